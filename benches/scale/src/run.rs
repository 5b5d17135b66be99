//! The benchmark run: starts the scaler process, runs each part, judges the goals, prints
//! the table and writes the JSON.

use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use crate::BenchError;
use crate::child::{Child, ChildMessage};
use crate::cli::{ChildArgs, Part, RunArgs};
use crate::floor::FloorFigures;
use crate::proc_stats::Machine;
use crate::report::{Report, SteadyResult};
use crate::scaler::ScalerStats;
use crate::steady::ControllerFigures;

/// Figures of one measuring child with the scaler's counters at its window's edges.
struct Measured<T> {
    figures: T,
    scaler_start: ScalerStats,
    scaler_end: ScalerStats,
}

async fn expect(
    child: &mut Child,
    wanted: &ChildMessage,
    limit: Duration,
) -> Result<(), BenchError> {
    let message: ChildMessage = child.receive(limit).await?;
    if &message == wanted {
        Ok(())
    } else {
        Err(BenchError::Child {
            child: "measuring child".into(),
            message: format!("expected {wanted:?}, got {message:?}"),
        })
    }
}

async fn measure<T: DeserializeOwned>(
    scaler: &mut Child,
    name: &str,
    args: &ChildArgs,
) -> Result<Measured<T>, BenchError> {
    let mut child = Child::spawn(name, &args.to_args(name))?;
    let startup =
        Duration::from_secs(120 + args.warmup) + Duration::from_millis(10 * args.objects as u64);
    expect(&mut child, &ChildMessage::WindowStart, startup).await?;
    let _: serde_json::Value = scaler.ask("reset").await?;
    let scaler_start: ScalerStats = scaler.ask("stats").await?;
    expect(
        &mut child,
        &ChildMessage::WindowEnd,
        Duration::from_secs(args.seconds + 60),
    )
    .await?;
    let scaler_end: ScalerStats = scaler.ask("stats").await?;
    let message: ChildMessage = child.receive(Duration::from_secs(60)).await?;
    let ChildMessage::Result { figures } = message else {
        return Err(BenchError::Child {
            child: name.into(),
            message: format!("expected its result, got {message:?}"),
        });
    };
    let figures: T = serde_json::from_value(figures)
        .map_err(|source| BenchError::json(format!("{name} figures"), source))?;
    child.finish(Duration::from_secs(60)).await;
    Ok(Measured {
        figures,
        scaler_start,
        scaler_end,
    })
}

async fn steady(
    scaler: &mut Child,
    address: &str,
    objects: usize,
    args: &RunArgs,
) -> Result<SteadyResult, BenchError> {
    let child_args = ChildArgs {
        address: address.to_owned(),
        objects,
        polling_interval: args.polling_interval,
        warmup: args.warmup,
        seconds: args.seconds,
        dashboard: args.dashboard,
    };
    eprintln!(
        "[1] steady state, {objects} objects: controller side ({} s window)...",
        args.seconds
    );
    let controller: Measured<ControllerFigures> = measure(scaler, "steady", &child_args).await?;
    eprintln!(
        "[1] steady state, {objects} objects: bare-tonic floor ({} s window)...",
        args.seconds
    );
    let floor_args = ChildArgs {
        dashboard: false,
        ..child_args.clone()
    };
    let floor: Measured<FloorFigures> = measure(scaler, "floor", &floor_args).await?;
    let c = &controller.figures;
    let rpcs = controller.scaler_end.rpcs_since(&controller.scaler_start);
    let total: u64 = rpcs.values().sum();
    let cores = |m_start: &ScalerStats, m_end: &ScalerStats, seconds: f64| {
        (m_end.cpu_seconds - m_start.cpu_seconds) / seconds.max(f64::EPSILON)
    };
    let f = &floor.figures;
    Ok(SteadyResult {
        objects,
        polling_seconds: args.polling_interval,
        rpcs_per_trigger_poll: total as f64 / c.polls.max(1) as f64,
        scaler_rpcs: rpcs,
        connections_seen: controller.scaler_end.connections_seen,
        connections_max: controller.scaler_end.connections_max,
        scaler_cpu_cores: cores(
            &controller.scaler_start,
            &controller.scaler_end,
            c.window_seconds,
        ),
        floor_scaler_cpu_cores: cores(&floor.scaler_start, &floor.scaler_end, f.window_seconds),
        cpu_ratio: c.cpu_cores / f.cpu_cores,
        controller: controller.figures,
        floor: floor.figures,
    })
}

/// Runs the benchmark as `args` says, prints the table and writes the JSON.
pub async fn run(args: &RunArgs) -> Result<Report, BenchError> {
    let args = args.effective();
    let mut report = Report {
        format: 1,
        mode: if args.smoke { "smoke" } else { "full" }.into(),
        date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Some(Machine::detect()),
        ..Report::default()
    };
    let push_interval = Duration::from_millis(args.push_interval_ms.max(1));
    let mut scaler = Child::spawn(
        "scaler",
        &[
            "scaler".into(),
            "--push-interval-ms".into(),
            args.push_interval_ms.to_string(),
        ],
    )?;
    let hello: serde_json::Value = scaler.receive(Duration::from_secs(30)).await?;
    let port = hello["port"].as_u64().ok_or_else(|| BenchError::Child {
        child: "scaler".into(),
        message: format!("expected its port, got {hello}"),
    })?;
    let address = format!("127.0.0.1:{port}");
    if args.parts.contains(&Part::Steady) {
        for objects in &args.objects {
            report
                .steady
                .push(steady(&mut scaler, &address, *objects, &args).await?);
        }
    }
    if args.parts.contains(&Part::Ready) {
        eprintln!("[2] create -> Ready, {} objects...", args.ready_objects);
        // One whole polling interval of the created objects (30 s), so every object polls once.
        let observe = Duration::from_secs(if args.smoke { 3 } else { 31 });
        let limit =
            Duration::from_secs(120) + Duration::from_millis(20 * args.ready_objects as u64);
        report.create_ready =
            Some(crate::ready::run_ready(&address, args.ready_objects, limit, observe).await?);
    }
    if args.parts.contains(&Part::Push) {
        eprintln!("[3] push fan-out, {} objects...", args.push_objects);
        report.push = Some(
            crate::push::run_push(&mut scaler, &address, args.push_objects, push_interval).await?,
        );
    }
    if args.parts.contains(&Part::Api) {
        eprintln!(
            "[4] API load, 3 x {} objects, {} s window...",
            args.api_objects, args.api_seconds
        );
        let options = crate::api_load::ApiOptions {
            objects: args.api_objects,
            polling_seconds: args.api_polling_interval,
            window: Duration::from_secs(args.api_seconds),
            scale_every: Duration::from_secs(args.api_scale_every.max(1)),
            readings_interval: Duration::from_secs(args.api_readings_interval),
        };
        report.api = Some(crate::api_load::run_api(&mut scaler, &address, &options).await?);
    }
    scaler.send("quit").await?;
    scaler.finish(Duration::from_secs(10)).await;
    report.judge();
    print!("{}", report.table());
    let json = serde_json::to_string_pretty(&report)
        .map_err(|source| BenchError::json("report", source))?;
    if let Some(parent) = args
        .json
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|source| BenchError::io(format!("create {}", parent.display()), source))?;
    }
    std::fs::write(&args.json, json + "\n")
        .map_err(|source| BenchError::io(format!("write {}", args.json.display()), source))?;
    println!("\nJSON written to {}", args.json.display());
    Ok(report)
}
