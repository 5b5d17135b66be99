//! The kubeconfig the binary writes: plain HTTP to the fake, no credentials, which kubectl,
//! client-go (Helm), kube-rs and the Python client all accept.

/// A kubeconfig whose current context points at `url` (e.g. `http://127.0.0.1:6443`), with
/// `default` as the namespace.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: ebb-fake
  cluster:
    server: {url}
contexts:
- name: ebb-fake
  context:
    cluster: ebb-fake
    namespace: default
    user: ebb-fake
current-context: ebb-fake
preferences: {{}}
users:
- name: ebb-fake
  user: {{}}
"
    )
}

/// Writes [`kubeconfig`] for `url` to `path` through a temporary name and a rename, so a
/// reader waiting for the file never sees half of it.
pub fn write_kubeconfig(path: &std::path::Path, url: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, kubeconfig(url))?;
    std::fs::rename(&partial, path)
}
