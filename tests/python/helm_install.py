"""Helm's own library (PyPI helm-python-sdk) installs ebb into ebb-fake-apiserver.

Usage: helm_install.py CHART_OR_MANIFEST
  CHART_OR_MANIFEST is a chart directory (deploy/helm/ebb once it exists) or a rendered
  manifest file (`kubectl kustomize deploy/`), which is wrapped into a minimal chart: CRDs
  under crds/, everything else under templates/.
KUBECONFIG names the fake. Prints one line per check; exits non-zero on the first failure.
"""

import os
import sys
import tempfile

import yaml
from helm_python import Config

RELEASE, NAMESPACE = "ebb", "ebb-system"


def fail(message):
    print("FAIL " + message)
    sys.exit(1)


def chart_from_manifest(path, into):
    """A chart whose templates are the rendered manifest, CRDs kept apart as Helm wants."""
    with open(path) as handle:
        documents = [d for d in yaml.safe_load_all(handle) if d]
    os.makedirs(os.path.join(into, "crds"))
    os.makedirs(os.path.join(into, "templates"))
    with open(os.path.join(into, "Chart.yaml"), "w") as handle:
        handle.write("apiVersion: v2\nname: ebb\nversion: 0.1.0\nappVersion: 0.1.0\n")
    crds = [d for d in documents if d.get("kind") == "CustomResourceDefinition"]
    rest = [d for d in documents if d.get("kind") != "CustomResourceDefinition"]
    # The rendered namespace is Helm's to create (create_namespace) in a chart install.
    rest = [d for d in rest if d.get("kind") != "Namespace"]
    with open(os.path.join(into, "crds", "crds.yaml"), "w") as handle:
        yaml.safe_dump_all(crds, handle)
    with open(os.path.join(into, "templates", "all.yaml"), "w") as handle:
        text = yaml.safe_dump_all(rest)
        if "{{" in text:
            fail("the rendered manifest holds '{{', which Helm would read as a template")
        handle.write(text)
    return into


def main():
    source = sys.argv[1]
    with tempfile.TemporaryDirectory() as scratch:
        chart = source if os.path.isdir(source) else chart_from_manifest(source, os.path.join(scratch, "ebb"))
        with Config(kubeconfig_path=os.environ["KUBECONFIG"], namespace=NAMESPACE) as config:
            release = config.install(chart, RELEASE, namespace=NAMESPACE, create_namespace=True, timeout=60)
            if release.get("status") != "deployed" or release.get("revision") != 1:
                fail("install answered %r" % {k: release.get(k) for k in ("status", "revision")})
            print("OK installed %s revision 1: deployed" % release.get("name"))
            status = config.status(RELEASE)
            if status.get("status") != "deployed":
                fail("release status is %r, not deployed" % status.get("status"))
            print("OK status deployed")
            listed = [r.get("name") for r in config.list()]
            if RELEASE not in listed:
                fail("helm list does not show the release: %r" % listed)
            print("OK list shows " + ", ".join(listed))
            upgraded = config.upgrade(chart, RELEASE, namespace=NAMESPACE, timeout=60)
            if upgraded.get("revision") != 2 or upgraded.get("status") != "deployed":
                fail("upgrade answered %r" % {k: upgraded.get(k) for k in ("status", "revision")})
            print("OK upgraded to revision 2")


if __name__ == "__main__":
    main()
