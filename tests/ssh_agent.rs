//! Auth through a real ssh-agent, and an encrypted key whose passphrase comes from the
//! environment. Alone in this binary because both read process environment variables.

mod support;

use regboot::ssh::{ConnectError, RemoteCommand, Session};
use support::sshd::{Agent, Sshd, SshdOptions, keygen, public_key};

#[test]
fn agent_and_encrypted_key_auth() {
    let dir = tempfile::tempdir().unwrap();
    let agent_key = keygen(dir.path(), "agent_id", "ed25519", "");
    let other_key = keygen(dir.path(), "other_id", "ecdsa", "");
    let locked_key = keygen(dir.path(), "locked_id", "ed25519", "correct horse");
    let agent = Agent::start(dir.path());
    // The unauthorized key first: the right one must still be found.
    agent.add(&other_key);
    agent.add(&agent_key);
    // SAFETY: set before the runtime starts; this binary has no other threads yet.
    unsafe {
        std::env::set_var("SSH_AUTH_SOCK", &agent.socket);
        std::env::set_var("REGBOOT_TEST_PASSPHRASE", "correct horse");
        std::env::set_var("REGBOOT_TEST_WRONG_PASSPHRASE", "wrong");
    }
    let sshd = Sshd::start(&SshdOptions {
        authorized_keys: vec![public_key(&agent_key), public_key(&locked_key)],
        ..Default::default()
    });
    let kh = dir.path().join("known_hosts");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let target = sshd.target("h1", "root", None, &kh);
        let session = Session::connect(&target).await.unwrap();
        let out = session
            .exec(&RemoteCommand::new("true"), None)
            .await
            .unwrap();
        assert!(out.success());

        let mut locked = sshd.target("h1", "root", Some(&locked_key), &kh);
        locked.key_passphrase_env = Some("REGBOOT_TEST_PASSPHRASE".into());
        Session::connect(&locked).await.unwrap();

        locked.key_passphrase_env = Some("REGBOOT_TEST_WRONG_PASSPHRASE".into());
        let err = Session::connect(&locked).await.err().unwrap();
        assert!(matches!(err, ConnectError::Key { .. }), "{err}");

        locked.key_passphrase_env = Some("REGBOOT_TEST_UNSET".into());
        let err = Session::connect(&locked).await.err().unwrap();
        assert!(err.to_string().contains("$REGBOOT_TEST_UNSET"), "{err}");

        // The agent's keys, all refused by a server that knows none of them.
        let stranger = Sshd::start(&SshdOptions::default());
        let err = Session::connect(&stranger.target("h2", "root", None, &kh))
            .await
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(matches!(err, ConnectError::AuthRefused { .. }), "{msg}");
        assert!(
            msg.contains("agent key other_id") && msg.contains("agent key agent_id"),
            "{msg}"
        );
    });
}
