"""The Helm chart, rendered by Helm's own engine (helm-python-sdk): the defaults equal the
kustomize base, the CRDs equal `ebb crd`, every value changes what it should, every rendered
object is valid against the Kubernetes OpenAPI schema, and values.schema.json rejects wrong
types."""

import subprocess

import pytest
from helm_python.errors import HelmRenderError, HelmValuesError

from conftest import (
    CHART_DIR,
    ROOT,
    containers,
    documents,
    ebb_binary,
    env,
    find,
    kustomize,
    render,
    validate,
)


def key(obj):
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def test_defaults_render_valid_objects(chart):
    objects = render(chart)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    assert set(containers(objects)) == {"controller", "rabbitmq-scaler", "azure-queue-scaler"}


def test_defaults_equal_the_kustomize_base(chart):
    # The Namespace is Helm's to create (--create-namespace); the CRDs are compared below.
    base = {
        key(o): o
        for o in kustomize(ROOT / "deploy")
        if o["kind"] not in ("Namespace", "CustomResourceDefinition")
    }
    for obj in base.values():
        validate(obj)
    rendered = {key(o): o for o in render(chart)}
    assert sorted(rendered) == sorted(base)
    for k, obj in base.items():
        assert rendered[k] == obj, f"{k} differs from the kustomize base"


def test_crds_equal_what_ebb_generates(chart, tmp_path):
    subprocess.run([ebb_binary(), "crd", "--out", str(tmp_path)], check=True)
    generated = {p.name: p.read_text() for p in tmp_path.iterdir()}
    in_chart = {c["name"].split("/")[-1]: c["data"] for c in chart.crds}
    assert sorted(in_chart) == sorted(generated)
    for name, text in generated.items():
        assert in_chart[name] == text, f"crds/{name} differs from `ebb crd`; run `ebb crd --out deploy/helm/ebb/crds`"
        for crd in documents(text):
            validate(crd)
    kinds = {documents(t)[0]["spec"]["names"]["kind"] for t in generated.values()}
    assert {"ScaledObject", "ScalerAuthentication", "ClusterScalerAuthentication"} <= kinds


def test_image_values(chart):
    objects = render(
        chart,
        {"image": {"repository": "registry.example/ebb", "tag": "1.2.3", "pullPolicy": "Always"}},
    )
    controller = containers(objects)["controller"]
    assert controller["image"] == "registry.example/ebb:1.2.3"
    assert controller["imagePullPolicy"] == "Always"
    # An empty tag is the chart's appVersion.
    default = containers(render(chart))["controller"]
    assert default["image"] == "ghcr.io/ebb-autoscaler/ebb:0.1.0"


def test_replica_count(chart):
    assert find(render(chart, {"replicaCount": 3}), "Deployment")["spec"]["replicas"] == 3


def test_watch_namespace(chart):
    assert "EBB_WATCH_NAMESPACE" not in env(containers(render(chart))["controller"])
    controller = containers(render(chart, {"watchNamespace": "team-a"}))["controller"]
    assert env(controller)["EBB_WATCH_NAMESPACE"] == "team-a"


def test_log_level_and_format(chart):
    controller = containers(render(chart, {"logLevel": "debug", "logFormat": "text"}))["controller"]
    assert env(controller)["EBB_LOG"] == "debug"
    assert env(controller)["EBB_LOG_JSON"] == "false"
    assert env(containers(render(chart))["controller"])["EBB_LOG_JSON"] == "true"


BUILT_IN_SCALERS = [
    # (values key, sidecar container, trigger type, listen address)
    ("rabbitmq", "rabbitmq-scaler", "rabbitmq", "127.0.0.1:9001"),
    ("azureQueue", "azure-queue-scaler", "azure-queue", "127.0.0.1:9002"),
]


def registry(objects):
    """The controller's scaler registry (EBB_SCALERS) as {type: address}; None when unset."""
    value = env(containers(objects)["controller"]).get("EBB_SCALERS")
    return None if value is None else dict(pair.split("=", 1) for pair in value.split(","))


def test_the_default_registry_maps_each_built_in_type_to_its_sidecar(chart):
    objects = render(chart)
    assert registry(objects) == {kind: listen for _, _, kind, listen in BUILT_IN_SCALERS}
    for _, container, _, listen in BUILT_IN_SCALERS:
        assert containers(objects)[container]["args"] == ["--listen", listen]


@pytest.mark.parametrize("scaler,container,kind,listen", BUILT_IN_SCALERS)
def test_a_disabled_scaler_leaves_the_pod_and_the_registry(chart, scaler, container, kind, listen):
    objects = render(chart, {"scalers": {scaler: {"enabled": False}}})
    rendered = containers(objects)
    assert container not in rendered
    assert "controller" in rendered and len(rendered) == 2
    # Its triggers now get the controller's UnregisteredScalerType error instead of calling
    # a port where nothing listens; the other scaler stays registered.
    others = {k: address for _, _, k, address in BUILT_IN_SCALERS if k != kind}
    assert registry(objects) == others
    # Nothing else changes: every other object equals the default rendering.
    defaults = {key(o): o for o in render(chart) if o["kind"] != "Deployment"}
    assert {key(o): o for o in objects if o["kind"] != "Deployment"} == defaults


def test_with_every_scaler_disabled_the_controller_gets_no_registry(chart):
    objects = render(chart, {"scalers": {"rabbitmq": {"enabled": False}, "azureQueue": {"enabled": False}}})
    assert list(containers(objects)) == ["controller"]
    assert registry(objects) is None


@pytest.mark.parametrize("scaler,container,kind,listen", BUILT_IN_SCALERS)
def test_a_scaler_can_be_changed(chart, scaler, container, kind, listen):
    values = {
        "scalers": {
            scaler: {
                "type": f"my-{kind}",
                "listen": "127.0.0.1:7000",
                "image": {"repository": "mirror.example/s", "tag": "9", "pullPolicy": "Never"},
                "args": ["--push-interval", "2s"],
            }
        }
    }
    objects = render(chart, values)
    changed = containers(objects)[container]
    assert changed["image"] == "mirror.example/s:9"
    assert changed["imagePullPolicy"] == "Never"
    assert changed["args"] == ["--listen", "127.0.0.1:7000", "--push-interval", "2s"]
    assert registry(objects)[f"my-{kind}"] == "127.0.0.1:7000"
    assert kind not in registry(objects)


def test_the_scaler_registry_adds_types_and_wins_over_a_built_in(chart):
    values = {
        "scalers": {"rabbitmq": {"enabled": False}},
        "scalerRegistry": {"kafka": "127.0.0.1:9010", "rabbitmq": "rabbitmq-scaler.scalers.svc:9001"},
    }
    assert registry(render(chart, values)) == {
        "azure-queue": "127.0.0.1:9002",
        "kafka": "127.0.0.1:9010",
        "rabbitmq": "rabbitmq-scaler.scalers.svc:9001",
    }
    overridden = registry(render(chart, {"scalerRegistry": {"azure-queue": "127.0.0.1:9102"}}))
    assert overridden["azure-queue"] == "127.0.0.1:9102"


@pytest.mark.parametrize(
    "values,message",
    [
        (
            {"scalers": {"rabbitmq": {"args": ["--listen", "127.0.0.1:7000"]}}},
            "scalers.rabbitmq.args: set the address with scalers.rabbitmq.listen, not with --listen in args",
        ),
        (
            {"scalers": {"azureQueue": {"args": ["--listen=127.0.0.1:7000"]}}},
            "scalers.azureQueue.args: set the address with scalers.azureQueue.listen",
        ),
        (
            {"scalers": {"azureQueue": {"type": "rabbitmq"}}},
            '"rabbitmq" is already the type of another enabled scaler',
        ),
    ],
)
def test_contradicting_scaler_values_are_refused_by_name(chart, values, message):
    with pytest.raises(HelmRenderError) as raised:
        chart.render(values, name="ebb", namespace="ebb-system", is_install=True)
    assert message in str(raised.value)


def test_extra_scalers(chart):
    extra = {
        "name": "kafka-scaler",
        "image": "example.com/kafka-scaler:1.0",
        "args": ["--listen", "127.0.0.1:9010"],
        "resources": {"requests": {"cpu": "10m"}},
    }
    rendered = containers(render(chart, {"extraScalers": [extra]}))
    assert rendered["kafka-scaler"] == extra
    assert list(rendered)[-1] == "kafka-scaler"


def test_resources_and_placement(chart):
    values = {
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "ebb-controller"}},
                        },
                    }
                ]
            }
        },
    }
    objects = render(chart, values)
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    assert containers(objects)["controller"]["resources"] == values["resources"]
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    default = find(render(chart), "Deployment")["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "affinity"} & set(default)


def test_pod_disruption_budget(chart):
    objects = render(chart, {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}})
    pdb = find(objects, "PodDisruptionBudget")
    pod_labels = find(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_service_monitor(chart):
    objects = render(chart, {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}})
    monitor = find(objects, "ServiceMonitor")
    service = find(objects, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == ["ebb-system"]


def test_release_name_and_namespace_name_every_object(chart):
    objects = render(chart, name="autoscaler", namespace="platform")
    for obj in objects:
        assert obj["metadata"]["name"].startswith("autoscaler-controller")
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "platform"
    binding = find(objects, "ClusterRoleBinding")
    assert binding["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": "autoscaler-controller",
        "namespace": "platform",
    }
    assert env(containers(objects)["controller"])["EBB_LEASE_NAME"] == "autoscaler-controller"


def test_leader_election_may_use_leases(chart):
    role = find(render(chart), "Role")
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]} in role["rules"]


@pytest.mark.parametrize(
    "values,where",
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"replicaCount": 1.5}, "/replicaCount"),
        ({"image": {"repository": "x", "tag": 7}}, "/image/tag"),
        ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"watchNamespace": ["a"]}, "/watchNamespace"),
        ({"scalers": {"rabbitmq": {"enabled": "yes"}}}, "/scalers/rabbitmq/enabled"),
        ({"scalers": {"azureQueue": {"args": "--push-interval 2s"}}}, "/scalers/azureQueue/args"),
        ({"scalers": {"rabbitmq": {"listen": 9001}}}, "/scalers/rabbitmq/listen"),
        ({"scalers": {"rabbitmq": {"listen": "127.0.0.1"}}}, "/scalers/rabbitmq/listen"),
        ({"scalers": {"azureQueue": {"type": "azure queue"}}}, "/scalers/azureQueue/type"),
        ({"scalerRegistry": {"kafka": 9010}}, "/scalerRegistry/kafka"),
        ({"scalerRegistry": {"kafka": "a:1,rabbitmq=b:2"}}, "/scalerRegistry/kafka"),
        ({"scalerRegistry": {"kafka=x": "a:1"}}, "invalid propertyName 'kafka=x'"),
        ({"extraScalers": {"name": "x"}}, "/extraScalers"),
        ({"resources": []}, "/resources"),
        ({"nodeSelector": ["linux"]}, "/nodeSelector"),
        ({"tolerations": {"key": "x"}}, "/tolerations"),
        ({"affinity": "anywhere"}, "/affinity"),
        ({"podDisruptionBudget": {"enabled": "true"}}, "/podDisruptionBudget/enabled"),
        ({"serviceMonitor": {"enabled": 1}}, "/serviceMonitor/enabled"),
        ({"logLevel": 3}, "/logLevel"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"replicas": 2}, "replicas"),
    ],
)
def test_the_schema_rejects_wrong_types(chart, values, where):
    merged = chart.merge_values(values) if hasattr(chart, "merge_values") else values
    with pytest.raises(HelmValuesError) as raised:
        chart.validate_schema(merged)
    assert where in str(raised.value)
    # Rendering refuses them too: nothing is rendered from values the schema rejects.
    with pytest.raises(HelmValuesError):
        chart.render(values, name="ebb", namespace="ebb-system", is_install=True)


def test_the_defaults_pass_the_schema(chart):
    chart.validate_schema(chart.values)


def test_chart_metadata():
    text = (CHART_DIR / "Chart.yaml").read_text()
    meta = documents(text)[0]
    assert meta["apiVersion"] == "v2" and meta["name"] == "ebb"
