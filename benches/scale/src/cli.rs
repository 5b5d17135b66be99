//! Command-line arguments of `ebb-bench`, including the hidden subcommands its child
//! processes run.

use std::path::PathBuf;

/// Scale benchmark of ebb: thousands of ScaledObjects on one controller, side by side with a
/// bare-tonic floor measured in the same run. Prints a table and writes JSON.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    /// A child process's role (internal: the benchmark starts these itself).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// What to measure.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Steady-state polling capacity, beside the bare-tonic floor.
    Steady,
    /// Create → Ready against the fake Kubernetes API server.
    Ready,
    /// Push fan-out.
    Push,
    /// The API server's load per object per hour (idle, readings changing, 10 % scaling).
    Api,
}

/// What the benchmark run measures.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Short run for CI: 100 objects for 5 s in every part (overrides the sizes below).
    #[arg(long, env = "EBB_BENCH_SMOKE")]
    pub smoke: bool,
    /// Object counts of the steady-state part, comma-separated.
    #[arg(
        long,
        env = "EBB_BENCH_OBJECTS",
        value_delimiter = ',',
        default_value = "1000,10000"
    )]
    pub objects: Vec<usize>,
    /// Measured seconds of each steady-state window (controller and floor).
    #[arg(long, env = "EBB_BENCH_SECONDS", default_value_t = 60)]
    pub seconds: u64,
    /// Unmeasured seconds after every object has polled once.
    #[arg(long, env = "EBB_BENCH_WARMUP", default_value_t = 10)]
    pub warmup: u64,
    /// pollingInterval of the steady-state objects, seconds.
    #[arg(long, env = "EBB_BENCH_POLLING_INTERVAL", default_value_t = 1)]
    pub polling_interval: u32,
    /// ScaledObjects created at once in the create → Ready part.
    #[arg(long, env = "EBB_BENCH_READY_OBJECTS", default_value_t = 5000)]
    pub ready_objects: usize,
    /// Objects in the push fan-out part.
    #[arg(long, env = "EBB_BENCH_PUSH_OBJECTS", default_value_t = 1000)]
    pub push_objects: usize,
    /// How often the scaler samples its source for push subscribers, milliseconds.
    #[arg(long, env = "EBB_BENCH_PUSH_INTERVAL_MS", default_value_t = 25)]
    pub push_interval_ms: u64,
    /// Objects in each of the three populations of the API-load part.
    #[arg(long, env = "EBB_BENCH_API_OBJECTS", default_value_t = 1000)]
    pub api_objects: usize,
    /// pollingInterval of the API-load objects, seconds.
    #[arg(long, env = "EBB_BENCH_API_POLLING_INTERVAL", default_value_t = 10)]
    pub api_polling_interval: u32,
    /// Measured seconds of the API-load part.
    #[arg(long, env = "EBB_BENCH_API_SECONDS", default_value_t = 300)]
    pub api_seconds: u64,
    /// Every this many seconds a tenth of the API-load `scaling` objects changes replicas.
    #[arg(long, env = "EBB_BENCH_API_SCALE_EVERY", default_value_t = 60)]
    pub api_scale_every: u64,
    /// `--status-readings-interval` of the API-load controller, seconds: set it below the
    /// window to see what readings cost once they are due.
    #[arg(long, env = "EBB_BENCH_API_READINGS_INTERVAL", default_value_t = 300)]
    pub api_readings_interval: u64,
    /// Run the steady-state controller with the dashboard's history recording (as
    /// `--dashboard` on the controller), to compare its cost.
    #[arg(long, env = "EBB_BENCH_DASHBOARD")]
    pub dashboard: bool,
    /// Parts to run, comma-separated.
    #[arg(
        long,
        env = "EBB_BENCH_PARTS",
        value_delimiter = ',',
        default_value = "steady,ready,push,api"
    )]
    pub parts: Vec<Part>,
    /// Where to write the JSON result.
    #[arg(long, env = "EBB_BENCH_JSON", default_value = "ebb-bench.json")]
    pub json: PathBuf,
}

impl RunArgs {
    /// The arguments with smoke-mode sizes applied when `--smoke` is set.
    pub fn effective(&self) -> RunArgs {
        if !self.smoke {
            return self.clone();
        }
        RunArgs {
            objects: vec![100],
            seconds: 5,
            warmup: 2,
            ready_objects: 100,
            push_objects: 100,
            api_objects: 30,
            api_polling_interval: 1,
            api_seconds: 6,
            api_scale_every: 2,
            api_readings_interval: 2,
            ..self.clone()
        }
    }
}

/// Roles of the benchmark's child processes.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the benchmark scaler on 127.0.0.1:0 (control lines on stdin).
    #[command(hide = true)]
    Scaler(ScalerArgs),
    /// Run the controller side of the steady-state part.
    #[command(hide = true)]
    Steady(ChildArgs),
    /// Run the bare-tonic floor of the steady-state part.
    #[command(hide = true)]
    Floor(ChildArgs),
}

/// Flags of the scaler child.
#[derive(Debug, Clone, clap::Args)]
pub struct ScalerArgs {
    /// Push sampling interval, milliseconds.
    #[arg(long, env = "EBB_BENCH_SCALER_PUSH_INTERVAL_MS", default_value_t = 25)]
    pub push_interval_ms: u64,
}

/// Flags of a measuring child (controller side or floor).
#[derive(Debug, Clone, clap::Args)]
pub struct ChildArgs {
    /// Scaler address, `127.0.0.1:port`.
    #[arg(long, env = "EBB_BENCH_CHILD_ADDRESS")]
    pub address: String,
    /// Objects (the floor: calls per interval).
    #[arg(long, env = "EBB_BENCH_CHILD_OBJECTS")]
    pub objects: usize,
    /// pollingInterval, seconds.
    #[arg(long, env = "EBB_BENCH_CHILD_POLLING_INTERVAL", default_value_t = 1)]
    pub polling_interval: u32,
    /// Unmeasured seconds first.
    #[arg(long, env = "EBB_BENCH_CHILD_WARMUP")]
    pub warmup: u64,
    /// Measured seconds.
    #[arg(long, env = "EBB_BENCH_CHILD_SECONDS")]
    pub seconds: u64,
    /// Record the dashboard's history (controller side only).
    #[arg(long, env = "EBB_BENCH_CHILD_DASHBOARD")]
    pub dashboard: bool,
}

impl ChildArgs {
    /// The flags as arguments for a child's command line.
    pub fn to_args(&self, subcommand: &str) -> Vec<String> {
        vec![
            subcommand.to_owned(),
            "--address".into(),
            self.address.clone(),
            "--objects".into(),
            self.objects.to_string(),
            "--polling-interval".into(),
            self.polling_interval.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--seconds".into(),
            self.seconds.to_string(),
        ]
        .into_iter()
        .chain(self.dashboard.then(|| "--dashboard".to_owned()))
        .collect()
    }
}
