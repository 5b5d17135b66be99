"""The official Kubernetes Python client against ebb-fake-apiserver: it watches
ScaledObjects, sees a status change made through the /status subresource, and gets 410 Gone
when it resumes a watch from a resourceVersion the server has compacted away.

Run by tests/python_kubernetes_client.rs with KUBECONFIG set; prints one line per check and
exits non-zero on the first failure.
"""

import sys
import threading
import urllib.request

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL, NAMESPACE = "ebb.dev", "v1alpha1", "scaledobjects", "default"


def fail(message):
    print("FAIL " + message)
    sys.exit(1)


def main():
    config.load_kube_config()
    api = client.CustomObjectsApi()
    body = {
        "apiVersion": "ebb.dev/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "watched"},
        "spec": {"scaleTargetRef": {"name": "worker"}, "triggers": []},
    }
    created = api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    if created["spec"].get("maxReplicaCount") != 100:
        fail("the schema default maxReplicaCount=100 was not applied: %r" % created["spec"])
    listed = api.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
    start = listed["metadata"]["resourceVersion"]

    def patch_status():
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, PLURAL, "watched",
            {"status": {"currentReplicas": 3, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Test", "message": "set by the test"}]}},
        )

    seen = None
    stream = watch.Watch()
    timer = threading.Timer(0.5, patch_status)
    timer.start()
    for event in stream.stream(api.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL,
                               resource_version=start, timeout_seconds=20):
        status = event["object"].get("status") or {}
        if event["type"] == "MODIFIED" and status.get("currentReplicas") == 3:
            seen = event["object"]
            stream.stop()
    timer.join()
    if seen is None:
        fail("the watch never saw the status change")
    if seen["metadata"].get("generation") != 1:
        fail("a status write changed metadata.generation: %r" % seen["metadata"])
    print("OK watch saw MODIFIED with status.currentReplicas=3 at resourceVersion "
          + seen["metadata"]["resourceVersion"])

    # Compact the history (a test-only control path of the fake, as etcd compaction would),
    # then resume from the old resourceVersion: the client must surface 410 Gone.
    host = api.api_client.configuration.host
    request = urllib.request.Request(host + "/ebb-fake/compact", method="POST")
    urllib.request.urlopen(request).read()
    try:
        for _ in watch.Watch().stream(api.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE,
                                      PLURAL, resource_version=start, timeout_seconds=5):
            pass
    except ApiException as error:
        if error.status != 410:
            fail("expected 410 Gone, got %s" % error.status)
        print("OK resuming from compacted resourceVersion %s: %s %s" % (start, error.status, error.reason))
        return
    fail("resuming from a compacted resourceVersion did not end in 410 Gone")


if __name__ == "__main__":
    main()
