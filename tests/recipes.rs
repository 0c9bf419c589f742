//! The cluster recipes are valid: the Slurm script parses with `bash -n`, the Kubernetes
//! manifests parse as YAML with the fields an Indexed Job needs, and the pipeline they embed
//! validates.

mod common;

use saphyr::{LoadableYamlNode, Yaml};

#[test]
fn slurm_script_is_valid_bash_and_uses_the_array_index() {
    let path = common::repo("examples/slurm/synthcohort.sbatch");
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("--array=0-$((SHARDS - 1))"));
    assert!(text.contains("--shard \"${SLURM_ARRAY_TASK_ID}/${SHARDS}\""));
    assert!(text.contains("--dependency=afterok:"));
    assert!(text.contains("synthcohort merge"));
}

fn docs(rel: &str) -> Vec<Yaml<'static>> {
    let text = std::fs::read_to_string(common::repo(rel)).unwrap();
    let text: &'static str = Box::leak(text.into_boxed_str());
    Yaml::load_from_str(text).unwrap()
}

#[test]
fn kubernetes_manifests_define_an_indexed_job_and_a_merge_job() {
    let d = docs("examples/kubernetes/synthcohort-job.yaml");
    let job = d
        .iter()
        .find(|y| y["kind"].as_str() == Some("Job"))
        .expect("a Job");
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_integer().unwrap();
    assert!(spec["parallelism"].as_integer().unwrap() >= 1);
    let pod = &spec["template"]["spec"];
    assert!(matches!(
        pod["restartPolicy"].as_str(),
        Some("Never") | Some("OnFailure")
    ));
    let args = pod["containers"][0]["args"][0].as_str().unwrap();
    assert!(
        args.contains(&format!(
            "--shard \"${{JOB_COMPLETION_INDEX}}/{completions}\""
        )),
        "{args}"
    );
    assert!(pod["volumes"].as_vec().unwrap().len() >= 2);

    // The embedded pipeline is a valid pipeline.
    let cm = d
        .iter()
        .find(|y| y["kind"].as_str() == Some("ConfigMap"))
        .unwrap();
    let pipeline = cm["data"]["pipeline.yaml"].as_str().unwrap();
    synthcohort::pipeline::parse(pipeline.as_bytes(), "configmap", std::path::Path::new("."))
        .unwrap();

    let m = docs("examples/kubernetes/synthcohort-merge.yaml");
    let merge = &m[0];
    assert_eq!(merge["kind"].as_str(), Some("Job"));
    let args = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(args.contains("synthcohort merge") && args.contains("synthcohort verify"));
}
