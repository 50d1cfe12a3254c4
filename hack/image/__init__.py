"""The operator's container image, built and run without a Docker engine.

`make image` (`python -m hack.image build`) builds the Dockerfile, unchanged, with Docker when an
engine answers and with podman otherwise. The podman side is what the image test uses, and what this
package owns:

- tools.py: podman, runc and debootstrap, installed with apt-get when missing (as root);
- podman.py: podman with a project-local configuration and storage under the cache directory
  (`~/.cache/open-connectors-operator/podman`), never the machine's own; host networking only;
- standin.py: a stand-in for the Dockerfile's base image when no registry is reachable: Debian's
  rootfs (debootstrap) with Debian's Python under the names the official image has, tagged with
  the exact name the Dockerfile's FROM uses, built once and cached;
- build.py: the build itself, with the host's CA bundle and pip configuration mounted for the
  build steps only (never stored in the image), and a tag keyed by the build context.
"""
