# claimflow's local stand-in for python:3.11-slim-bookworm at run time, on the Debian bookworm
# root filesystem the devstack makes with debootstrap (imported as claimflow-debian, already
# without apt's caches, documentation and translations): Debian's python3.11 and the CA
# certificates, nothing else. The service venvs run /usr/bin/python3 (python3.11).
ARG DEBIAN_IMAGE=claimflow-debian:bookworm
FROM ${DEBIAN_IMAGE}
# The versions are bookworm's, from the same apt sources as the debootstrapped root.
# hadolint ignore=DL3008
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends ca-certificates python3 python3.11 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
ENV LANG=C.UTF-8
CMD ["python3"]
