# SoftPlace services (gateway, ingest, detector, web, bookings): one image, the `softplace` command.
#   docker build -t softplace .      (docker compose builds it for you)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY softplace softplace
COPY gateway gateway
COPY ingest ingest
COPY detector detector
COPY privacy privacy
COPY dashboards dashboards
COPY bookings bookings
COPY provision provision
COPY devkit devkit
COPY softplace_cli softplace_cli
COPY web web
COPY firmware/softplace_fw firmware/softplace_fw
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/softplace --create-home \
        softplace
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER softplace
WORKDIR /var/lib/softplace
VOLUME ["/var/lib/softplace"]
ENTRYPOINT ["softplace"]
CMD ["--help"]
