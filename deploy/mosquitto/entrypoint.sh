#!/bin/sh
# Build the broker's password file, then start mosquitto through the image's own
# entrypoint. Accounts: the service account from the environment (.env) and every
# device account in /mosquitto/devices/passwd (deploy/mosquitto/devices/passwd on the
# host, made with mosquitto_passwd; see deploy/README.md). Rebuilt on every start, so
# adding a device is: add it to the devices file, then `docker compose restart mosquitto`.
set -eu
umask 077
: "${MQTT_SERVICE_PASSWORD:?set MQTT_SERVICE_PASSWORD in .env}"
passwd=/mosquitto/config/passwd
if [ -f /mosquitto/devices/passwd ]; then
    grep -v '^softplace-service:' /mosquitto/devices/passwd > "$passwd" || true
else
    echo "no device accounts yet: /mosquitto/devices/passwd is missing" >&2
    : > "$passwd"
fi
mosquitto_passwd -b "$passwd" softplace-service "$MQTT_SERVICE_PASSWORD"
chown mosquitto:mosquitto "$passwd"
exec /docker-entrypoint.sh "$@"
