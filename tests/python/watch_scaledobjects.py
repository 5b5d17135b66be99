"""The official Kubernetes Python client against the real kube-apiserver: it watches
ScaledObjects, sees a status change made through the /status subresource, and gets 410 Gone
when it resumes a watch from a resourceVersion the server no longer holds.

Usage: watch_scaledobjects.py NAMESPACE

Run by tests/python_kubernetes_client.rs with KUBECONFIG set; prints one line per check and
exits non-zero on the first failure.
"""

import json
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "ebb.dev", "v1alpha1", "scaledobjects"

# Older than anything the apiserver's watch cache for a custom resource holds: that cache
# starts at the CRD's first list, which comes after the CRD's own write, so after revision 1.
GONE_RESOURCE_VERSION = "1"


def fail(message):
    print("FAIL " + message)
    sys.exit(1)


def watch_sees_status_change(api, namespace):
    body = {
        "apiVersion": "ebb.dev/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "watched"},
        # No controller serves this namespace: the trigger is never called.
        "spec": {"scaleTargetRef": {"name": "worker"}, "triggers": [
            {"type": "external", "metadata": {"scalerAddress": "127.0.0.1:9", "value": "1"}}]},
    }
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    if created["spec"].get("maxReplicaCount") != 100:
        fail("the schema default maxReplicaCount=100 was not applied: %r" % created["spec"])
    listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    start = listed["metadata"]["resourceVersion"]

    def patch_status():
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, "watched",
            {"status": {"currentReplicas": 3, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Test", "message": "set by the test"}]}},
        )

    seen = None
    stream = watch.Watch()
    timer = threading.Timer(0.5, patch_status)
    timer.start()
    for event in stream.stream(api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
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


def expired_watch_answers_in_band(api, namespace):
    """The real apiserver accepts the watch (HTTP 200) and sends the 410 as its one event, an
    ERROR carrying a Status: the form every client's watch loop has to handle."""
    response = api.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, watch=True,
        resource_version=GONE_RESOURCE_VERSION, timeout_seconds=5, _preload_content=False)
    try:
        lines = [line for line in response.read().decode().splitlines() if line.strip()]
    finally:
        response.release_conn()
    if response.status != 200:
        fail("an expired watch answered HTTP %s, not 200 with an ERROR event" % response.status)
    if len(lines) != 1:
        fail("an expired watch sent %d events, not one ERROR: %r" % (len(lines), lines))
    event = json.loads(lines[0])
    status = event.get("object") or {}
    if (event.get("type"), status.get("kind"), status.get("code"), status.get("reason")) != (
            "ERROR", "Status", 410, "Expired"):
        fail("an expired watch sent %r, not ERROR Status 410 Expired" % event)
    if not status.get("message", "").startswith("too old resource version: 1 ("):
        fail("the 410 does not say the resourceVersion is too old: %r" % status)
    print("OK expired watch: HTTP 200, one ERROR event: %s %s (%s)"
          % (status["code"], status["reason"], status["message"]))


def client_surfaces_gone(api, namespace):
    try:
        for event in watch.Watch().stream(api.list_namespaced_custom_object, GROUP, VERSION,
                                          namespace, PLURAL,
                                          resource_version=GONE_RESOURCE_VERSION,
                                          timeout_seconds=5):
            fail("resuming from an expired resourceVersion delivered %s" % event["type"])
    except ApiException as error:
        if error.status != 410:
            fail("expected 410 Gone, got %s" % error.status)
        if not str(error.reason).startswith("Expired: too old resource version"):
            fail("the client's 410 does not carry the server's reason: %r" % error.reason)
        print("OK resuming from expired resourceVersion %s: %s %s"
              % (GONE_RESOURCE_VERSION, error.status, error.reason))
        return
    fail("resuming from an expired resourceVersion did not end in 410 Gone")


def main():
    if len(sys.argv) != 2:
        fail("usage: watch_scaledobjects.py NAMESPACE")
    namespace = sys.argv[1]
    config.load_kube_config()
    api = client.CustomObjectsApi()
    watch_sees_status_change(api, namespace)
    expired_watch_answers_in_band(api, namespace)
    client_surfaces_gone(api, namespace)


if __name__ == "__main__":
    main()
