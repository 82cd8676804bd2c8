//! `regboot completions` and `regboot man`, as a shell and man(1) take them.

mod support;

use std::process::Command;

use support::cli::stdout_ok as regboot;

/// bash loads the script and completes subcommands and options from it.
#[test]
fn bash_completes_from_the_generated_script() {
    let script = regboot(&["completions", "bash"]);
    // As bash's `complete -F` calls it: the words, the index, then (command, current, previous).
    let complete = |words: &str, cword: usize| {
        let w: Vec<&str> = words.split(' ').collect();
        let (cur, prev) = (w[cword], w[cword - 1]);
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{script}\nCOMP_WORDS=({words}); COMP_CWORD={cword}; _regboot regboot {cur} {prev}; \
                 echo \"${{COMPREPLY[@]}}\""
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("regboot ap", 1), "apply");
    assert!(complete("regboot apply --li", 2).contains("--limit"));
    assert!(complete("regboot rotate --", 2).contains("--ca"));
    for shell in ["zsh", "fish"] {
        assert!(
            regboot(&["completions", shell]).contains("rotate"),
            "{shell}"
        );
    }
}

#[test]
fn man_page_names_every_command() {
    let page = regboot(&["man"]);
    assert!(page.contains(".TH regboot 1"), "{page}");
    for cmd in ["apply", "plan", "verify", "rotate", "facts", "certs", "lab"] {
        // The SUBCOMMANDS section names each as regboot-CMD(1).
        assert!(page.contains(&format!("regboot\\-{cmd}(1)")), "{cmd}");
    }
}
