"""Shared fixtures of the Helm chart tests: the chart loaded by Helm's own engine
(helm-python-sdk), rendering, and validation of every rendered object."""

import os
import pathlib
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml
from helm_python.chart import Chart

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "deploy" / "helm" / "ebb"
# The Kubernetes version whose OpenAPI schemas the rendered objects must satisfy: the one the
# controller's k8s-openapi types are built for.
KUBERNETES_VERSION = "1.33"
RELEASE = "ebb"
NAMESPACE = "ebb-system"


@pytest.fixture(scope="session")
def chart():
    return Chart.load(str(CHART_DIR))


def documents(text):
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(chart, values=None, name=RELEASE, namespace=NAMESPACE):
    """The objects the chart renders for `values`, each validated (see `validate`)."""
    rendered = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
    objects = []
    for text in rendered.values():
        objects.extend(documents(text))
    for obj in objects:
        validate(obj)
    return objects


def validate_service_monitor(obj):
    """No schema for the Prometheus Operator's ServiceMonitor ships offline, so its shape is
    checked here: the fields the operator requires, with their types."""
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    spec = obj["spec"]
    assert isinstance(spec["selector"]["matchLabels"], dict)
    assert isinstance(spec["namespaceSelector"]["matchNames"], list)
    for endpoint in spec["endpoints"]:
        assert isinstance(endpoint["port"], str)
        assert endpoint["interval"][-1] in "smh"
    unknown = set(spec) - {"selector", "namespaceSelector", "endpoints"}
    assert not unknown, unknown


def validate(obj):
    """Validates one object against the Kubernetes OpenAPI schema of its kind (strict: unknown
    fields are errors)."""
    if obj.get("kind") == "ServiceMonitor":
        validate_service_monitor(obj)
        return
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def find(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def containers(objects):
    deployment = find(objects, "Deployment")
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def kubectl():
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed: it renders the kustomize base offline (the project's machines have it)")
    return path


def kustomize(directory):
    output = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert output.returncode == 0, output.stderr
    return documents(output.stdout)


def ebb_binary():
    path = os.environ.get("EBB_BIN") or str(ROOT / "target" / "debug" / "ebb")
    if not os.path.exists(path):
        pytest.fail(f"{path} not found: build it (cargo build --bin ebb) or set EBB_BIN")
    return path
