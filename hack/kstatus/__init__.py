"""A tiny Go program around kstatus (sigs.k8s.io/cli-utils), the status library Flux health checks use."""
