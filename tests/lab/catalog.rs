//! `regboot catalog` against the lab: two tags pushed to the registry are listed with their
//! digest and size as the replica serves them, and the verdict says the replicas agree.

use crate::support::cli::run_json;
use crate::support::lab::TestLab;

#[test]
fn catalog_lists_what_the_replica_serves() {
    let lab = TestLab::up("catalog", 2);
    let inv = lab.lab.inventory_path.clone();
    let (code, applied) = run_json(&inv, &["apply"]);
    assert_eq!(code, 0, "apply: {applied:#}");
    let password = std::fs::read_to_string(lab.lab.dir.join("registry-password")).unwrap();
    let reg = lab.host("host1");
    lab.ssh_ok(
        reg,
        &format!(
            "export DOCKER_CONFIG=$(mktemp -d) && echo '{}' | docker login registry.lab:5000 -u lab --password-stdin >/dev/null \
             && img=$(docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep registry | head -n 1) \
             && for t in one two; do docker tag \"$img\" registry.lab:5000/lab/copy:$t && docker push -q registry.lab:5000/lab/copy:$t >/dev/null; done \
             && rm -rf \"$DOCKER_CONFIG\"",
            password.trim()
        ),
    );
    let (code, report) = run_json(&inv, &["catalog"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["agree"], true, "{report:#}");
    let images = report["replicas"][0]["images"].as_array().unwrap();
    let tags: Vec<&str> = images
        .iter()
        .filter(|i| i["repository"] == "lab/copy")
        .map(|i| i["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["one", "two"], "{report:#}");
    assert_eq!(images[0]["digest"], images[1]["digest"]);
    assert!(
        images[0]["size"].as_u64().unwrap() > 1_000_000,
        "{report:#}"
    );
}
