//! Ranks launched by `mpirun` train the model one process trains (cargo feature `mpi`; needs
//! Open MPI's `mpirun`: `bash scripts/install_mpi.sh`).
//!
//! Each test launches this test binary again under `mpirun`, running only
//! [`rank_of_an_mpirun_launch`]: each rank trains the tiny MLM with [`Mpi`]'s collectives and
//! writes its losses and final parameters to a file. The test then trains the same model in
//! one process with as many shards as the ranks had in all and compares. As root, on the
//! loopback interface only, and with more ranks than cores allowed.

#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::prelude::*;
use pretext::train::mpi::Mpi;
use pretext::train::{TrainConfig, Trainer, launched_ranks};

/// What the launched ranks run: `shards steps resume out broken`, in this variable (`broken`:
/// the rank that cannot read its corpus, or `none`).
const RUN: &str = "PRETEXT_MPI_RUN";

fn settings(shards: usize, steps: usize) -> TrainConfig {
    common::quick_config(steps)
        .with_shards(shards)
        .with_valid_every(steps.min(20))
        .with_checkpoint_every(2)
}

/// Train losses and final parameters, as each rank writes them and as one process gives them.
type Outcome = (Vec<f64>, Vec<f32>);

/// One process with `shards` shards, in `out` (resuming from its checkpoint with `resume`).
fn one_process(shards: usize, steps: usize, out: &Path, resume: bool) -> Outcome {
    let device = Device::flex().autodiff();
    let (model, train, valid) = common::tiny_mlm_with_dropout(&device);
    let report = Trainer::new(model, &settings(shards, steps))
        .output(out)
        .resume(resume)
        .fit(&train, &valid)
        .unwrap();
    common::outcome(&report)
}

/// A rank of the run `RUN` names; does nothing unless `mpirun` launched it.
#[test]
#[ignore = "a rank of the launches the other tests make"]
fn rank_of_an_mpirun_launch() {
    let (Some(_), Ok(run)) = (launched_ranks(), std::env::var(RUN)) else {
        return;
    };
    let fields: Vec<&str> = run.split(' ').collect();
    let [shards, steps, resume, out, broken] = fields[..] else {
        panic!("{RUN}={run}: expected `shards steps resume out broken`");
    };
    let (shards, steps) = (shards.parse().unwrap(), steps.parse().unwrap());
    let out = PathBuf::from(out);
    let mpi = Mpi::init().unwrap();
    let rank = mpi.rank();
    std::fs::write(
        out.join(format!("pid-{rank}")),
        std::process::id().to_string(),
    )
    .unwrap();
    if broken == rank.to_string() {
        let missing = out.join("no-such-corpus");
        pretext::corpus::Corpus::from_dir(&missing, pretext::corpus::DocumentBoundary::File)
            .expect("this rank's corpus");
    }
    let device = Device::flex().autodiff();
    let (model, train, valid) = common::tiny_mlm_with_dropout(&device);
    let report = Trainer::new(model, &settings(shards, steps))
        .output(out.join("run"))
        .resume(resume == "resume")
        .ranks(mpi.ranks())
        .fit(&train, &valid)
        .unwrap();
    let text = serde_json::to_string(&common::outcome(&report)).unwrap();
    std::fs::write(out.join(format!("rank-{rank}.json")), text).unwrap();
    mpi.finish();
}

/// `mpirun -np RANKS` of [`rank_of_an_mpirun_launch`], started (rank `broken` unable to read
/// its corpus).
fn launch(
    ranks: usize,
    shards: usize,
    steps: usize,
    resume: bool,
    out: &Path,
    broken: Option<usize>,
) -> std::process::Child {
    let resume = if resume { "resume" } else { "fresh" };
    let broken = broken.map_or("none".to_string(), |r| r.to_string());
    let run = format!("{shards} {steps} {resume} {} {broken}", out.display());
    Command::new("mpirun")
        .args([
            "-np",
            &ranks.to_string(),
            "--oversubscribe",
            "--bind-to",
            "none",
        ])
        .args(["--timeout", "300"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rank_of_an_mpirun_launch",
            "--ignored",
            "--nocapture",
        ])
        .env(RUN, run)
        // Root in a container, on loopback only, one compute thread a rank.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl", "self,tcp")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun (Open MPI): bash scripts/install_mpi.sh installs it")
}

/// What rank `rank` of a finished launch wrote.
fn outcome(out: &Path, rank: usize) -> Outcome {
    let text = std::fs::read_to_string(out.join(format!("rank-{rank}.json")))
        .unwrap_or_else(|e| panic!("rank {rank} wrote no outcome: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn agree(what: &str, (losses, params): &Outcome, want: &Outcome) {
    assert_eq!(
        losses.len(),
        want.0.len(),
        "{what}: {losses:?} against {:?}",
        want.0
    );
    for (step, (a, b)) in losses.iter().zip(&want.0).enumerate() {
        let off = ((a - b) / b).abs();
        assert!(
            off < 1e-6,
            "{what}, step {}: loss {a} against {b}",
            step + 1
        );
    }
    let diff = common::relative_diff(params, &want.1);
    eprintln!("{what}: parameters differ by {diff:e} (relative)");
    assert!(diff < 1e-6, "{what}: parameters differ by {diff}");
}

#[test]
fn ranks_of_an_mpirun_launch_train_the_model_one_process_trains() {
    for (ranks, shards) in [(2, 1), (2, 2)] {
        let out = common::temp_dir("mpirun");
        let done = launch(ranks, shards, 6, false, &out, None)
            .wait_with_output()
            .unwrap();
        let log = String::from_utf8_lossy(&done.stderr);
        assert!(done.status.success(), "mpirun failed: {log}");
        let want = one_process(ranks * shards, 6, &common::temp_dir("one"), false);
        let all: Vec<Outcome> = (0..ranks).map(|r| outcome(&out, r)).collect();
        for (rank, got) in all.iter().enumerate() {
            agree(
                &format!("{ranks} ranks x {shards} shards, rank {rank}"),
                got,
                &want,
            );
            // The replicas are the same model to the bit (the loop compares their checksums
            // at every validation, and would have failed).
            assert_eq!(got, &all[0], "rank {rank} against rank 0");
        }
    }
}

#[test]
fn a_killed_rank_ends_the_job_soon_and_the_run_resumes_exactly() {
    let out = common::temp_dir("mpirun-killed");
    let steps = 300;
    let mut job = launch(2, 1, steps, false, &out, None);
    // Kill rank 1 once the run has a checkpoint to come back to.
    let started = Instant::now();
    let checkpoint = out.join("run/checkpoint");
    while !(checkpoint.exists() && out.join("pid-1").exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint came"
        );
        assert!(
            job.try_wait().unwrap().is_none(),
            "the job ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = std::fs::read_to_string(out.join("pid-1")).unwrap();
    let killed = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    let done = job.wait_with_output().unwrap();
    let took = killed.elapsed();
    let log =
        String::from_utf8_lossy(&done.stderr).into_owned() + &String::from_utf8_lossy(&done.stdout);
    eprintln!(
        "the job ended {took:?} after the kill, with {}",
        done.status
    );
    assert!(
        !done.status.success(),
        "the job ended well without rank 1: {log}"
    );
    assert!(
        took < Duration::from_secs(30),
        "the job took {took:?} to end"
    );
    assert!(log.contains("rank 1"), "the message names no rank: {log}");
    assert!(
        !out.join("rank-0.json").exists(),
        "rank 0 finished without rank 1"
    );
    // Resumed on 2 ranks from the last checkpoint: the steps after it as an uninterrupted run
    // has them, and its model.
    let resumed = launch(2, 1, steps, true, &out, None)
        .wait_with_output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let want = one_process(2, steps, &common::temp_dir("one-uninterrupted"), false);
    let (losses, params) = outcome(&out, 0);
    assert!(losses.len() < steps, "the resumed run began at step 1");
    let tail = want.0[steps - losses.len()..].to_vec();
    agree("killed, then resumed", &(losses, params), &(tail, want.1));
}

#[test]
fn a_rank_that_cannot_read_its_data_fails_the_whole_job_before_the_first_step() {
    let out = common::temp_dir("mpirun-broken");
    let started = Instant::now();
    let done = launch(2, 1, 6, false, &out, Some(1))
        .wait_with_output()
        .unwrap();
    let took = started.elapsed();
    let log =
        String::from_utf8_lossy(&done.stderr).into_owned() + &String::from_utf8_lossy(&done.stdout);
    assert!(!done.status.success(), "the job ended well: {log}");
    assert!(
        took < Duration::from_secs(30),
        "the job took {took:?} to end"
    );
    assert!(
        log.contains("no-such-corpus"),
        "the message names no file: {log}"
    );
    assert!(log.contains("rank 1"), "the message names no rank: {log}");
    assert!(!out.join("run/checkpoint").exists(), "a step ran");
}
