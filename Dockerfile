# The agent's image for people who build with a container engine. The
# project itself builds the same image without one: `cargo xtask image --out DIR`
# writes an OCI layout (see docs/image.md); both give a static coxswain
# (musl), a static helm 4, CA certificates and the non-root user 65532, and
# nothing else: no shell, no package manager, no libc.

FROM docker.io/library/rust:1.95-bookworm AS coxswain
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_DEBUG=false
RUN cargo build --locked --release --package coxswain --bin coxswain \
    --target x86_64-unknown-linux-musl

FROM docker.io/library/golang:1.26-bookworm AS helm
ARG HELM_VERSION=v4.3.1
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}" \
    helm.sh/helm/v4/cmd/helm@${HELM_VERSION}

FROM scratch
COPY --from=coxswain /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY <<PASSWD /etc/passwd
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
COPY <<GROUP /etc/group
root:x:0:
nonroot:x:65532:
GROUP
COPY --from=helm /out/helm /usr/local/bin/helm
COPY --from=coxswain /src/target/x86_64-unknown-linux-musl/release/coxswain /usr/local/bin/coxswain
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt HOME=/home/nonroot
WORKDIR /home/nonroot
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/coxswain"]
CMD ["agent"]
