# The build stage's base for local builds (the service Dockerfile's BUILDER_IMAGE):
# claimflow-base plus what only building needs, so that no image that runs carries it:
# - `python` and `pip`, as the public image has them: Debian's, allowed to install into the
#   system Python (PEP 668 protects a system this stage is not: only its /opt/venv is kept);
# - binutils, whose strip takes the debugging symbols out of the compiled extensions;
# - the certificate authorities this machine trusts locally: a proxy in front of the package
#   index may present its own, and pip and uv must accept it.
ARG BASE_IMAGE=claimflow-base:bookworm
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends binutils python-is-python3 python3-pip \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV PIP_BREAK_SYSTEM_PACKAGES=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
