"""A real kube-apiserver and etcd for tests, the demo and the benchmark (see design.md section 7)."""
