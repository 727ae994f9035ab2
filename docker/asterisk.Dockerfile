# syntax=docker/dockerfile:1.7
#
# warmline Asterisk node. Debian 12 has no asterisk package; sid has Asterisk 22 with ARI, PJSIP,
# MixMonitor, AMD, Queue, ConfBridge, Opus, SRTP (see shared DESIGN.md). Build from the repo root:
#
#     docker build -f docker/asterisk.Dockerfile -t warmline/asterisk .
#
# /etc/asterisk is a volume the warmline service writes to (agents' pjsip_agents.conf, rendered
# config); the templates in config/asterisk/ are copied in as defaults only: the entrypoint renders
# a template into /etc/asterisk only where that file does not exist yet.

FROM debian:sid-slim

LABEL org.opencontainers.image.title="warmline-asterisk" \
      org.opencontainers.image.description="Asterisk node for warmline (ARI, PJSIP, MixMonitor, AMD)" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

# sid moves daily, so versions are not pinned; tag and keep the images you deploy.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       asterisk asterisk-modules asterisk-core-sounds-en sox tini ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# The package's asterisk user gets fixed ids: uid 10002, primary group 10001 (the group that the
# warmline service image's user has too), so shared volumes need no root and no chmod 777.
# The stock /etc/asterisk (demo dialplan included) is moved aside: nothing in it is used.
ARG ASTERISK_UID=10002
ARG WARMLINE_GID=10001
RUN set -eux; \
    getent group asterisk >/dev/null || groupadd --system asterisk; \
    getent passwd asterisk >/dev/null || useradd --system --gid asterisk --home-dir /var/lib/asterisk \
        --no-create-home --shell /usr/sbin/nologin asterisk; \
    groupmod --gid "${WARMLINE_GID}" asterisk; \
    usermod --uid "${ASTERISK_UID}" --gid "${WARMLINE_GID}" asterisk; \
    mkdir -p /usr/share/doc/asterisk; \
    mv /etc/asterisk /usr/share/doc/asterisk/etc-stock; \
    install -d -o asterisk -g asterisk -m 2775 /etc/asterisk /var/lib/warmline/recordings \
        /var/spool/asterisk/recording; \
    install -d -o asterisk -g asterisk -m 0750 /var/lib/asterisk /var/spool/asterisk /var/log/asterisk \
        /var/run/asterisk /var/cache/asterisk; \
    chown -R asterisk:asterisk /var/lib/asterisk /var/spool/asterisk /var/log/asterisk \
        /var/run/asterisk /var/cache/asterisk; \
    chmod 2775 /var/spool/asterisk/recording

# Defaults only: the entrypoint renders these where /etc/asterisk lacks the file.
COPY config/asterisk/ /usr/share/warmline/asterisk/
COPY --chmod=0755 docker/asterisk-entrypoint.sh /usr/local/bin/asterisk-entrypoint

VOLUME ["/etc/asterisk", "/var/lib/warmline/recordings"]

# SIP (PJSIP transports), ARI/HTTP, AMI (the service only: MixMonitor on nailed calls), RTP. Keep
# rtp.conf's range and this range the same
# (the entrypoint renders RTP_START/RTP_END into rtp.conf).
EXPOSE 5060/udp 5060/tcp 5061/tcp 8088/tcp 5038/tcp 10000-10999/udp

USER 10002:10001
WORKDIR /var/lib/asterisk

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["asterisk", "-rx", "core show version"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/asterisk-entrypoint"]
CMD ["asterisk", "-f", "-vvv"]
