"""The cluster example and the virtual-node overlay render offline with `kubectl kustomize`,
and every object they render is valid: built-in kinds against the Kubernetes OpenAPI schema,
ebb's kinds against the openAPIV3Schema of the CRD that `ebb crd` generates."""

import subprocess

import jsonschema
import pytest

from conftest import ROOT, documents, ebb_binary, kustomize, validate

EXAMPLE = ROOT / "deploy" / "examples" / "azure-queue-functions"
VIRTUAL_NODE = ROOT / "deploy" / "overlays" / "virtual-node"


@pytest.fixture(scope="module")
def crd_schemas(tmp_path_factory):
    out = tmp_path_factory.mktemp("crds")
    subprocess.run([ebb_binary(), "crd", "--out", str(out)], check=True)
    schemas = {}
    for path in out.iterdir():
        crd = documents(path.read_text())[0]
        for version in crd["spec"]["versions"]:
            api_version = f'{crd["spec"]["group"]}/{version["name"]}'
            schemas[(api_version, crd["spec"]["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_all(objects, crd_schemas):
    for obj in objects:
        schema = crd_schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            validate(obj)
            continue
        # apiVersion, kind and metadata are the API server's, not the CRD schema's.
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        jsonschema.validate(body, schema)


def deployment(objects, name):
    [found] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
    return found


def test_the_azure_functions_example_renders_and_is_valid(crd_schemas):
    objects = kustomize(EXAMPLE)
    validate_all(objects, crd_schemas)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Deployment", "Namespace", "ScaledObject", "ScalerAuthentication"]
    scaled = next(o for o in objects if o["kind"] == "ScaledObject")
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "azure-queue"
    assert trigger["metadata"]["queueLengthStrategy"] == "visibleonly"
    assert "connection" not in trigger["metadata"], "the connection string must come from the Secret"
    auth = next(o for o in objects if o["kind"] == "ScalerAuthentication")
    assert auth["metadata"]["name"] == trigger["authenticationRef"]["name"]
    assert auth["spec"]["secretTargetRef"][0]["parameter"] == "connection"
    functions = deployment(objects, scaled["spec"]["scaleTargetRef"]["name"])
    assert functions["spec"]["replicas"] == 0
    env = {e["name"]: e for e in functions["spec"]["template"]["spec"]["containers"][0]["env"]}
    secret_ref = env["AzureWebJobsStorage"]["valueFrom"]["secretKeyRef"]
    assert secret_ref == {
        "name": auth["spec"]["secretTargetRef"][0]["name"],
        "key": auth["spec"]["secretTargetRef"][0]["key"],
    }
    assert env["AzureFunctionsJobHost__extensions__queues__maxDequeueCount"]["value"] == "3"


def test_the_virtual_node_overlay_moves_only_the_workers(crd_schemas):
    objects = kustomize(VIRTUAL_NODE)
    validate_all(objects, crd_schemas)
    tolerations = [
        {"key": "virtual-kubelet.io/provider", "operator": "Exists"},
        {"key": "azure.com/aci", "effect": "NoSchedule"},
    ]
    for name in ("rabbitmq-consumer", "queue-functions"):
        pod = deployment(objects, name)["spec"]["template"]["spec"]
        assert pod["nodeSelector"]["type"] == "virtual-kubelet"
        assert pod["tolerations"] == tolerations
        assert pod["containers"], name
    # The broker is state, not a worker: it stays on the cluster's own nodes.
    broker = deployment(objects, "rabbitmq")["spec"]["template"]["spec"]
    assert "nodeSelector" not in broker and "tolerations" not in broker
    # Nothing else changed: the same objects as the two examples on their own.
    plain = kustomize(ROOT / "deploy" / "examples" / "rabbitmq-consumer") + kustomize(EXAMPLE)
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, objects)) == sorted(map(key, plain))
    for obj in plain:
        [moved] = [o for o in objects if key(o) == key(obj)]
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] != "rabbitmq":
            moved = {**moved, "spec": {**moved["spec"], "template": {**moved["spec"]["template"]}}}
            spec = dict(moved["spec"]["template"]["spec"])
            spec.pop("nodeSelector")
            spec.pop("tolerations")
            moved["spec"]["template"]["spec"] = spec
        assert moved == obj, key(obj)
