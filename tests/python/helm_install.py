"""Helm's own library (PyPI helm-python-sdk) installs, upgrades and uninstalls the ebb chart
(deploy/helm/ebb) in the cluster KUBECONFIG names: the tests' real control plane.

Usage:
  helm_install.py install RELEASE NAMESPACE [VALUES_JSON]
  helm_install.py upgrade RELEASE NAMESPACE [VALUES_JSON]
  helm_install.py uninstall RELEASE NAMESPACE [--ignore-missing]

Each action checks what Helm answers and prints `OK ...` lines; install and upgrade then print
one `OBJECT {"apiVersion", "kind", "namespace", "name"}` line (JSON) per object of the
release's manifest, for the caller to look up with another client. The first failed check
prints `FAIL ...` and exits 1; an error of Helm's propagates (exit 1, with its message).
"""

import json
import os
import sys

import yaml
from helm_python import Config

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "helm", "ebb")
TIMEOUT = 120


def fail(message):
    print("FAIL " + message)
    sys.exit(1)


def print_objects(manifest):
    """One OBJECT line per document of the release's manifest."""
    for document in yaml.safe_load_all(manifest or ""):
        if not document:
            continue
        meta = document.get("metadata", {})
        found = {
            "apiVersion": document.get("apiVersion"),
            "kind": document.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
        }
        print("OBJECT " + json.dumps(found))


def expect_deployed(release, revision, what):
    answered = {key: release.get(key) for key in ("status", "revision")}
    if answered != {"status": "deployed", "revision": revision}:
        fail("%s answered %r, not deployed revision %d" % (what, answered, revision))


def install(config, name, namespace, values):
    release = config.install(CHART, name, values, namespace=namespace, timeout=TIMEOUT)
    expect_deployed(release, 1, "install")
    print("OK installed %s revision 1: deployed" % name)
    status = config.status(name)
    if status.get("status") != "deployed":
        fail("release status is %r, not deployed" % status.get("status"))
    listed = [r.get("name") for r in config.list()]
    if name not in listed:
        fail("helm list does not show the release: %r" % listed)
    print("OK list shows " + name)
    print_objects(release.get("manifest"))


def upgrade(config, name, namespace, values):
    before = config.status(name).get("revision")
    release = config.upgrade(CHART, name, values, namespace=namespace, timeout=TIMEOUT)
    expect_deployed(release, before + 1, "upgrade")
    print("OK upgraded %s to revision %d: deployed" % (name, before + 1))
    print_objects(release.get("manifest"))


def uninstall(config, name, ignore_missing):
    answer = config.uninstall(name, timeout=TIMEOUT, wait="watcher", ignore_not_found=ignore_missing)
    released = (answer or {}).get("release") or {}
    if released and released.get("status") != "uninstalled":
        fail("uninstall answered status %r" % released.get("status"))
    print("OK uninstalled " + name)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("install", "upgrade", "uninstall"):
        fail("usage: helm_install.py install|upgrade|uninstall RELEASE NAMESPACE [VALUES_JSON | --ignore-missing]")
    action, name, namespace = sys.argv[1:4]
    extra = sys.argv[4] if len(sys.argv) > 4 else None
    with Config(kubeconfig_path=os.environ["KUBECONFIG"], namespace=namespace) as config:
        if action == "uninstall":
            uninstall(config, name, extra == "--ignore-missing")
            return
        values = json.loads(extra) if extra else {}
        (install if action == "install" else upgrade)(config, name, namespace, values)


if __name__ == "__main__":
    main()
