# The clinic server (brochure serve) in a container: Debian, the README's system packages, brochure.
#
#   docker build -t brochure .
#   docker run --rm -it -v brochure-data:/data --entrypoint brochure brochure staff add "Your Name" --role admin
#   docker run -d --name brochure -p 8443:8443 \
#       -v /srv/clinic:/clinic -v brochure-data:/data \
#       -v /run/cups/cups.sock:/run/cups/cups.sock \
#       brochure --host-name desk.clinic.lan
#
# /clinic is the project folder (content/ with brand.toml and topics/; out/ owned by uid 10001); /data keeps the delivery
# record, the audit trail, the staff accounts and the server's own certificates (back it up).
# Printing goes to the host's CUPS through its socket. See README, "Run brochure for the whole clinic".
FROM debian:trixie-slim

# The README's packages for running brochure (Chromium is only for its tests), Python, and the
# time zones (docker run -e TZ=...: "today" and the follow-up emails' hours are the clinic's).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 cups-client cups-bsd \
       python3 python3-venv ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md /opt/brochure/src/
COPY brochure /opt/brochure/src/brochure
COPY templates /opt/brochure/src/templates
COPY styles /opt/brochure/src/styles
RUN python3 -m venv /opt/brochure/venv \
    && /opt/brochure/venv/bin/pip install --no-cache-dir /opt/brochure/src \
    && groupadd --system --gid 10001 brochure \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin brochure \
    && mkdir -p /clinic /data && chown brochure:brochure /data && chmod 700 /data

# The record, audit trail, accounts and certificates under /data (platformdirs follows XDG).
ENV PATH=/opt/brochure/venv/bin:$PATH \
    XDG_DATA_HOME=/data \
    XDG_CONFIG_HOME=/data/config \
    PYTHONUNBUFFERED=1
VOLUME ["/clinic", "/data"]
USER brochure
WORKDIR /clinic
EXPOSE 8443
ENTRYPOINT ["brochure", "serve", "--project", "/clinic", "--bind", "0.0.0.0:8443"]
CMD []
