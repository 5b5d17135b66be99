#!/usr/bin/env python3
"""A directory scaler for ebb, written in Python with grpcio.

It scales on the number of files waiting in a spool directory, and serves BOTH protocols on
one port: ebb's `ebb.scaler.v1` (with the GetInfo metadata schema) and KEDA's
`externalscaler.ExternalScaler`, plus `grpc.health.v1` and server reflection.

Trigger metadata (see METADATA below for the schema GetInfo reports):
  directory          required  the spool directory; its files matching `pattern` are the value
  pattern            optional  glob of counted file names (default "*")
  target             optional  files one replica should handle (default 10)
  activationTarget   optional  active when the count is strictly above this (default 0)
  metricName         optional  metric name (default "dir-<directory base name>")
  inFlightDirectory  optional  directory of files being worked on; its file count is in-flight

Run:
  python scaler.py --address 127.0.0.1:50051            # both protocols
  python scaler.py --address 127.0.0.1:0 --keda-only    # only KEDA's protocol
  python scaler.py --address 127.0.0.1:0 --broken       # breaks the protocol on purpose

With port 0 the chosen address is printed as `listening on HOST:PORT`. The gRPC stubs are
generated from ../../proto into ./gen (gitignored) on start when missing or stale.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import grpc

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
GEN = HERE / "gen"
PROTOS = ["ebb/scaler/v1/scaler.proto", "externalscaler/externalscaler.proto"]
VERSION = "0.1.0"


def generate_stubs() -> None:
    """Compiles the protos into ./gen unless it is up to date. Builds in a temporary directory
    and renames it into place, so scalers started in parallel never see half a package."""
    newest_proto = max((PROTO_ROOT / proto).stat().st_mtime for proto in PROTOS)
    stamp = GEN / ".stamp"
    if stamp.exists() and stamp.stat().st_mtime >= newest_proto:
        return
    from grpc_tools import protoc  # only needed when generating

    scratch = Path(tempfile.mkdtemp(prefix=".gen-", dir=HERE))
    include = Path(protoc.__file__).parent / "_proto"
    status = protoc.main(
        ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={scratch}", f"--grpc_python_out={scratch}"]
        + [str(PROTO_ROOT / proto) for proto in PROTOS]
    )
    if status != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise SystemExit(f"protoc failed with status {status}")
    (scratch / ".stamp").touch()
    stale = HERE / f".gen-old-{os.getpid()}"
    try:
        if GEN.exists():
            GEN.rename(stale)
        scratch.rename(GEN)
    except OSError:
        # Another process put a fresh copy in place first; theirs is as good as ours.
        shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(stale, ignore_errors=True)


generate_stubs()
sys.path.insert(0, str(GEN))

from ebb.scaler.v1 import scaler_pb2 as v1  # noqa: E402
from ebb.scaler.v1 import scaler_pb2_grpc as v1_grpc  # noqa: E402
from externalscaler import externalscaler_pb2 as keda  # noqa: E402
from externalscaler import externalscaler_pb2_grpc as keda_grpc  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha import reflection  # noqa: E402

# The metadata schema reported by GetInfo; parse() below follows it.
METADATA = [
    v1.MetadataField(key="directory", required=True, kind=v1.VALUE_KIND_STRING,
                     description="Spool directory whose matching files are the metric value."),
    v1.MetadataField(key="pattern", default_value="*", kind=v1.VALUE_KIND_STRING,
                     description="Glob of the file names to count."),
    v1.MetadataField(key="target", default_value="10", kind=v1.VALUE_KIND_NUMBER,
                     description="Files one replica should handle."),
    v1.MetadataField(key="activationTarget", default_value="0", kind=v1.VALUE_KIND_NUMBER,
                     description="Active when the count is strictly above this."),
    v1.MetadataField(key="metricName", kind=v1.VALUE_KIND_STRING,
                     description="Metric name; default dir-<directory base name>."),
    v1.MetadataField(key="inFlightDirectory", kind=v1.VALUE_KIND_STRING,
                     description="Directory of files being worked on; its file count is in-flight."),
]
# Broken mode adds a secret key, and then echoes it in errors (a protocol violation).
BROKEN_METADATA = METADATA + [
    v1.MetadataField(key="token", secret=True, kind=v1.VALUE_KIND_STRING,
                     description="An access token (the broken mode leaks it)."),
]


class ScalerError(Exception):
    """A failure with the gRPC status code the protocol documents for it."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class Trigger:
    """A trigger's parsed configuration."""

    def __init__(self, values: dict[str, str]):
        directory = values.get("directory", "").strip()
        if not directory:
            raise ScalerError(grpc.StatusCode.INVALID_ARGUMENT, "invalid metadata `directory`: is required")
        self.directory = Path(directory)
        self.pattern = values.get("pattern", "*") or "*"
        self.target = number(values, "target", 10.0)
        if self.target <= 0:
            raise ScalerError(grpc.StatusCode.INVALID_ARGUMENT, "invalid metadata `target`: must be > 0")
        self.activation_target = number(values, "activationTarget", 0.0)
        self.metric_name = values.get("metricName") or f"dir-{sanitize(self.directory.name)}"
        in_flight = values.get("inFlightDirectory")
        self.in_flight_directory = Path(in_flight) if in_flight else None

    def count(self) -> int:
        """Counts the matching files; a missing directory is NOT_FOUND."""
        return count_files(self.directory, self.pattern)

    def in_flight(self) -> int | None:
        if self.in_flight_directory is None:
            return None
        return count_files(self.in_flight_directory, "*")


def number(values: dict[str, str], key: str, default: float) -> float:
    raw = values.get(key)
    if raw is None:
        return default
    try:
        parsed = float(raw)
    except ValueError:
        parsed = math.nan
    if not math.isfinite(parsed):
        raise ScalerError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid metadata `{key}`: `{raw}` is not a number")
    return parsed


def sanitize(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    return cleaned or "root"


def count_files(directory: Path, pattern: str) -> int:
    try:
        return sum(1 for entry in os.scandir(directory) if entry.is_file() and fnmatch.fnmatch(entry.name, pattern))
    except FileNotFoundError:
        raise ScalerError(grpc.StatusCode.NOT_FOUND, f"directory {directory} does not exist") from None
    except OSError as error:
        raise ScalerError(grpc.StatusCode.UNAVAILABLE, f"cannot read {directory}: {error.strerror}") from None


def keda_values(metadata) -> dict[str, str]:
    """KEDA's scalerMetadata: a resolved `xFromEnv` key stands for `x` unless `x` is given."""
    values = {key: value for key, value in metadata.items() if not key.endswith("FromEnv")}
    for key, value in metadata.items():
        base = key[: -len("FromEnv")]
        if key.endswith("FromEnv") and base and value:
            values.setdefault(base, value)
    return values


def v1_values(request) -> dict[str, str]:
    """v1 metadata merged with secrets; a secret wins over a plain key of the same name."""
    values = dict(request.metadata)
    values.update(request.secrets)
    return values


def guarded(method):
    """Turns ScalerError into the gRPC status the protocol documents."""

    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ScalerError as error:
            context.abort(error.code, str(error))

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class Core:
    """The protocol-independent scaler: specs, measurements and push."""

    def __init__(self, push_interval: float, broken: bool):
        self.push_interval = push_interval
        self.broken = broken
        self.calls = itertools.count()

    def parse(self, values: dict[str, str]) -> Trigger:
        if self.broken and "token" in values:
            # Violation: the credential ends up in the error message.
            raise ScalerError(grpc.StatusCode.INTERNAL, f"token {values['token']} rejected")
        if self.broken and not values.get("directory"):
            # Violation: a missing required key is not INVALID_ARGUMENT.
            raise ScalerError(grpc.StatusCode.INTERNAL, "something went wrong")
        return Trigger(values)

    def metric_name(self, trigger: Trigger) -> str:
        # Violation in broken mode: the name changes on every call.
        return f"{trigger.metric_name}-{next(self.calls)}" if self.broken else trigger.metric_name

    def target(self, trigger: Trigger) -> float:
        return 0.0 if self.broken else trigger.target

    def value(self, trigger: Trigger) -> float:
        count = float(trigger.count())
        return -1.0 - count if self.broken else count

    def active(self, trigger: Trigger) -> bool:
        return trigger.count() > trigger.activation_target

    def watch(self, trigger: Trigger, context):
        """Yields the activity now, then whenever it changes, until the caller goes away."""
        last = None
        stop = threading.Event()
        context.add_callback(stop.set)
        while context.is_active():
            state = self.active(trigger)
            if state != last:
                last = state
                yield state
            if stop.wait(self.push_interval):
                return


class V1Servicer(v1_grpc.ScalerServicer):
    """ebb.scaler.v1."""

    def __init__(self, core: Core, keda_compatible: bool):
        self.core = core
        self.keda_compatible = keda_compatible

    def GetInfo(self, request, context):
        return v1.GetInfoResponse(
            protocol_version=1,
            name="python-directory",
            version=VERSION,
            description="Scales on the number of files waiting in a directory (Python example)",
            capabilities=v1.Capabilities(push=True, in_flight=True, keda_compatible=self.keda_compatible),
            metadata=BROKEN_METADATA if self.core.broken else METADATA,
        )

    @guarded
    def GetMetricSpec(self, request, context):
        trigger = self.core.parse(v1_values(request))
        return v1.GetMetricSpecResponse(metric_specs=[v1.MetricSpec(
            metric_name=self.core.metric_name(trigger),
            target=self.core.target(trigger),
            activation_target=trigger.activation_target,
            target_type=v1.METRIC_TARGET_TYPE_AVERAGE_VALUE,
        )])

    @guarded
    def GetMetrics(self, request, context):
        trigger = self.core.parse(v1_values(request))
        value = self.core.value(trigger)
        response = v1.GetMetricsResponse(
            metric_values=[v1.MetricValue(
                metric_name=self.core.metric_name(trigger),
                value=value,
                target=self.core.target(trigger),
                activation_target=trigger.activation_target,
            )],
            active=value > trigger.activation_target,
        )
        in_flight = trigger.in_flight()
        if in_flight is not None:
            response.in_flight.count = in_flight
        return response

    @guarded
    def IsActive(self, request, context):
        return v1.IsActiveResponse(active=self.core.active(self.core.parse(v1_values(request))))

    def StreamIsActive(self, request, context):
        try:
            trigger = self.core.parse(v1_values(request))
            if self.core.broken:
                # Violation: push is advertised, but nothing is sent until the caller leaves.
                gone = threading.Event()
                context.add_callback(gone.set)
                gone.wait(3600)
                return
            for state in self.core.watch(trigger, context):
                yield v1.IsActiveResponse(active=state)
        except ScalerError as error:
            context.abort(error.code, str(error))


class KedaServicer(keda_grpc.ExternalScalerServicer):
    """KEDA's externalscaler.ExternalScaler."""

    def __init__(self, core: Core):
        self.core = core

    @guarded
    def IsActive(self, request, context):
        return keda.IsActiveResponse(result=self.core.active(self.core.parse(keda_values(request.scalerMetadata))))

    @guarded
    def GetMetricSpec(self, request, context):
        trigger = self.core.parse(keda_values(request.scalerMetadata))
        target = self.core.target(trigger)
        return keda.GetMetricSpecResponse(metricSpecs=[keda.MetricSpec(
            metricName=self.core.metric_name(trigger),
            targetSize=math.ceil(target),
            targetSizeFloat=target,
        )])

    @guarded
    def GetMetrics(self, request, context):
        trigger = self.core.parse(keda_values(request.scaledObjectRef.scalerMetadata))
        value = self.core.value(trigger)
        return keda.GetMetricsResponse(metricValues=[keda.MetricValue(
            metricName=request.metricName or self.core.metric_name(trigger),
            metricValue=max(0, math.floor(value)),
            metricValueFloat=value,
        )])

    def StreamIsActive(self, request, context):
        try:
            trigger = self.core.parse(keda_values(request.scalerMetadata))
            for state in self.core.watch(trigger, context):
                yield keda.IsActiveResponse(result=state)
        except ScalerError as error:
            context.abort(error.code, str(error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("SCALER_ADDRESS", "127.0.0.1:50051"),
                        help="host:port to listen on; port 0 picks a free port (env SCALER_ADDRESS)")
    parser.add_argument("--push-interval", type=float, default=float(os.environ.get("SCALER_PUSH_INTERVAL", "0.2")),
                        help="seconds between directory samples for StreamIsActive (env SCALER_PUSH_INTERVAL)")
    parser.add_argument("--keda-only", action="store_true", help="serve only KEDA's protocol")
    parser.add_argument("--broken", action="store_true", help="break the protocol on purpose (conformance demo)")
    args = parser.parse_args()

    core = Core(args.push_interval, args.broken)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    services = [keda.DESCRIPTOR.services_by_name["ExternalScaler"].full_name]
    keda_grpc.add_ExternalScalerServicer_to_server(KedaServicer(core), server)
    if not args.keda_only:
        v1_grpc.add_ScalerServicer_to_server(V1Servicer(core, keda_compatible=True), server)
        services.append(v1.DESCRIPTOR.services_by_name["Scaler"].full_name)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ["", *services]:
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)

    port = server.add_insecure_port(args.address)
    if port == 0:
        raise SystemExit(f"cannot listen on {args.address}")
    host = args.address.rsplit(":", 1)[0]
    server.start()
    print(f"listening on {host}:{port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for service in ["", *services]:
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    server.stop(grace=5).wait()


if __name__ == "__main__":
    main()
