//! ScaledJob under `ebb run`, with real processes and a third-party scaler that speaks only
//! KEDA's protocol. The backlog is a directory of files; each job takes exactly one (an atomic
//! rename) and exits, so the number of jobs run is checkable: a backlog of 7 at target 1 runs
//! exactly 7 jobs, none while the backlog is empty, and a further 3 exactly 3 more. Also: a
//! failed job process is run again within `backoffLimit`, `activeDeadlineSeconds` kills a
//! job, Ctrl-C lets running jobs finish within their grace period, and `--check` says the
//! image is ignored.
//!
//! "Nothing happened" is checked after the scaler answered more polls, never after a sleep.

#[path = "ebb_run/mod.rs"]
mod ebb_run;
#[path = "keda_backlog/mod.rs"]
mod keda_backlog;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ebb_run::EbbRun;
use keda_backlog::BacklogScaler;
use support::wait_for;

/// Takes one item from $QUEUE into $TAKEN (renamed after the job, so each item's taker is
/// on record), records the run in $RUNS, exits.
const TAKE_ONE: &str = r#"#!/bin/sh
touch "$RUNS/$EBB_JOB_NAME.$EBB_JOB_ATTEMPT"
for item in "$QUEUE"/*; do
  # An empty queue leaves the pattern itself; a vanished item was taken by another job.
  [ "$item" = "$QUEUE/*" ] && exit 0
  if mv "$item" "$TAKEN/$(basename "$item").$EBB_JOB_NAME" 2>/dev/null; then
    exit 0
  fi
done
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    queue: PathBuf,
    taken: PathBuf,
    runs: PathBuf,
}

impl Fixture {
    fn new(script: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let fixture = Self {
            queue: root.join("queue"),
            taken: root.join("taken"),
            runs: root.join("runs"),
            root,
            _dir: dir,
        };
        for sub in [&fixture.queue, &fixture.taken, &fixture.runs] {
            std::fs::create_dir_all(sub).expect("mkdir");
        }
        std::fs::write(fixture.root.join("job.sh"), script).expect("script");
        fixture
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("ebb.log")).unwrap_or_default()
    }

    fn add_items(&self, first: u32, count: u32) {
        for n in first..first + count {
            std::fs::write(self.queue.join(format!("item-{n:03}")), "x").expect("item");
        }
    }

    /// A ScaledJob whose job runs `job.sh`, at target 1 on the scaler at `address`.
    fn manifest(&self, address: &str, extra_spec: &str, template_extra: &str) -> PathBuf {
        let yaml = format!(
            r#"apiVersion: ebb.dev/v1alpha1
kind: ScaledJob
metadata:
  name: items
spec:
  pollingInterval: 1
  maxReplicaCount: 20
{extra_spec}  jobTargetRef:
    template:
      spec:
{template_extra}        containers:
          - name: job
            image: example.invalid/items-job:1
            command: ["sh", "./job.sh"]
            env:
              - {{name: QUEUE, value: "{queue}"}}
              - {{name: TAKEN, value: "{taken}"}}
              - {{name: RUNS, value: "{runs}"}}
  triggers:
    - type: external
      metadata:
        scalerAddress: "{address}"
"#,
            queue = self.queue.display(),
            taken = self.taken.display(),
            runs = self.runs.display(),
        );
        let path = self.root.join("scaledjob.yaml");
        std::fs::write(&path, yaml).expect("manifest");
        path
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

fn jobs_status(run: &EbbRun) -> Option<serde_json::Value> {
    run.status()?.get("scaledJobs")?.get(0).cloned()
}

fn field(status: &Option<serde_json::Value>, name: &str) -> u64 {
    status
        .as_ref()
        .and_then(|status| status.get(name))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// Waits until the scaler has answered `more` further polls.
fn wait_polls(scaler: &BacklogScaler, more: u64) {
    let target = scaler.polls() + more;
    wait_for("further polls", Duration::from_secs(20), || {
        scaler.polls() >= target
    });
}

#[test]
fn backlog_of_7_runs_exactly_7_jobs_then_3_more_and_none_while_empty() {
    let fixture = Fixture::new(TAKE_ONE);
    let scaler = keda_backlog::start(fixture.queue.clone(), 1);
    let manifest = fixture.manifest(&scaler.address.to_string(), "", "");
    let ebb = support::binary("ebb", "ebb");
    let run = EbbRun::start(&ebb, &manifest, &fixture.root.join("ebb.log"));

    // Empty backlog: three polls, no job.
    wait_polls(&scaler, 3);
    assert_eq!(
        count(&fixture.runs),
        0,
        "a job ran while the backlog was empty"
    );

    fixture.add_items(0, 7);
    wait_for("7 jobs succeeded", Duration::from_secs(30), || {
        field(&jobs_status(&run), "succeeded") >= 7 && count(&fixture.queue) == 0
    });
    // Backlog empty again: later polls start nothing.
    wait_polls(&scaler, 3);
    let status = jobs_status(&run);
    assert_eq!(
        count(&fixture.runs),
        7,
        "exactly 7 job runs for 7 items; ebb run said:\n{}",
        fixture.log()
    );
    assert_eq!(field(&status, "succeeded"), 7, "{status:?}");
    assert_eq!(field(&status, "running"), 0, "{status:?}");
    assert_eq!(field(&status, "failed"), 0, "{status:?}");

    fixture.add_items(7, 3);
    wait_for("3 more jobs succeeded", Duration::from_secs(30), || {
        field(&jobs_status(&run), "succeeded") >= 10 && count(&fixture.queue) == 0
    });
    wait_polls(&scaler, 3);
    assert_eq!(
        count(&fixture.runs),
        10,
        "exactly 3 more job runs for 3 items"
    );
    assert_eq!(field(&jobs_status(&run), "succeeded"), 10);
    // Each item was taken exactly once, each by a different job.
    let mut takers: Vec<String> = std::fs::read_dir(&fixture.taken)
        .expect("taken")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    takers.sort();
    assert_eq!(takers.len(), 10, "{takers:?}");
    let mut jobs: Vec<&str> = takers
        .iter()
        .map(|name| name.split_once('.').map_or("", |(_, job)| job))
        .collect();
    jobs.sort_unstable();
    jobs.dedup();
    assert_eq!(jobs.len(), 10, "one item per job: {takers:?}");
}

#[test]
fn a_failed_job_process_runs_again_within_backoff_limit() {
    // The first attempt fails; the second takes the item.
    let script = format!(
        "#!/bin/sh\nif [ \"$EBB_JOB_ATTEMPT\" = 0 ]; then touch \"$RUNS/$EBB_JOB_NAME.0\"; exit 3; fi\n{}",
        TAKE_ONE.trim_start_matches("#!/bin/sh\n")
    );
    let fixture = Fixture::new(&script);
    let scaler = keda_backlog::start(fixture.queue.clone(), 1);
    let manifest = fixture.manifest(
        &scaler.address.to_string(),
        "",
        "        restartPolicy: OnFailure\n",
    );
    let manifest_text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(
        &manifest,
        manifest_text.replace(
            "  jobTargetRef:\n",
            "  jobTargetRef:\n    backoffLimit: 2\n",
        ),
    )
    .expect("write");
    fixture.add_items(0, 1);
    let ebb = support::binary("ebb", "ebb");
    let run = EbbRun::start(&ebb, &manifest, &fixture.root.join("ebb.log"));
    wait_for("the retried job succeeded", Duration::from_secs(30), || {
        field(&jobs_status(&run), "succeeded") == 1
    });
    wait_polls(&scaler, 2);
    let status = jobs_status(&run);
    assert_eq!(field(&status, "failed"), 0, "{status:?}");
    assert_eq!(count(&fixture.runs), 2, "one job, two attempts");
    assert_eq!(count(&fixture.taken), 1);
}

#[test]
fn active_deadline_kills_a_job_that_runs_too_long() {
    let fixture = Fixture::new("#!/bin/sh\ntouch \"$RUNS/$EBB_JOB_NAME\"\nexec sleep 600\n");
    let scaler = keda_backlog::start(fixture.queue.clone(), 1);
    let manifest = fixture.manifest(
        &scaler.address.to_string(),
        // One job at most, so the item that stays in the queue starts no second one.
        "  maxReplicaCount: 1\n",
        "",
    );
    let text = std::fs::read_to_string(&manifest).expect("read");
    let text = text.replace("  maxReplicaCount: 20\n", "").replace(
        "  jobTargetRef:\n",
        "  jobTargetRef:\n    activeDeadlineSeconds: 1\n    backoffLimit: 0\n",
    );
    std::fs::write(&manifest, text).expect("write");
    fixture.add_items(0, 1);
    let ebb = support::binary("ebb", "ebb");
    let run = EbbRun::start(&ebb, &manifest, &fixture.root.join("ebb.log"));
    wait_for(
        "the job failed by deadline",
        Duration::from_secs(30),
        || field(&jobs_status(&run), "failed") >= 1,
    );
    let status = jobs_status(&run);
    assert_eq!(field(&status, "succeeded"), 0, "{status:?}");
}

#[test]
fn ctrl_c_lets_running_jobs_finish_within_their_grace_period() {
    // The job needs 1 s after it took its item; the grace period is 20 s.
    let script = TAKE_ONE.replace(
        "    exit 0\n  fi",
        "    sleep 1; touch \"$RUNS/finished.$EBB_JOB_NAME\"; exit 0\n  fi",
    );
    let fixture = Fixture::new(&script);
    let scaler = keda_backlog::start(fixture.queue.clone(), 1);
    let manifest = fixture.manifest(
        &scaler.address.to_string(),
        "",
        "        terminationGracePeriodSeconds: 20\n",
    );
    fixture.add_items(0, 2);
    let ebb = support::binary("ebb", "ebb");
    let mut run = EbbRun::start(&ebb, &manifest, &fixture.root.join("ebb.log"));
    wait_for("both jobs took their item", Duration::from_secs(30), || {
        count(&fixture.taken) == 2
    });
    run.interrupt();
    let exit = run.wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "ebb run exited with {exit}");
    let finished = std::fs::read_dir(&fixture.runs)
        .expect("runs")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with("finished."))
        })
        .count();
    assert_eq!(
        finished, 2,
        "both running jobs finished before ebb run exited"
    );
}

#[test]
fn check_says_the_image_is_ignored_locally() {
    let fixture = Fixture::new(TAKE_ONE);
    let manifest = fixture.manifest("127.0.0.1:9", "", "");
    let output = support::run_ebb(&["run", "--check", "-f", &manifest.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("image example.invalid/items-job:1 is ignored locally"),
        "{stdout}"
    );
    assert!(
        stdout.contains("scaled job items: one process per job: sh ./job.sh"),
        "{stdout}"
    );
}
