#!/bin/sh
# Build the broker's password file, ACL and TLS listener, then start mosquitto through
# the image's own entrypoint. Rebuilt on every start, so adding a device is
# `softplace device add ...`, then `docker compose restart mosquitto`.
#
# Accounts: the service accounts (softplace-gateway-<site> for each site in
# SOFTPLACE_SITE, softplace-ingest, softplace-detector, softplace-health) with
# MQTT_SERVICE_PASSWORD, softplace-installer with MQTT_INSTALLER_PASSWORD, and every
# device account in devices/passwd (lines for softplace-* names are ignored there).
# TLS: when certs/broker.crt and certs/broker.key exist, a TLS listener on 8883.
set -eu
umask 077
: "${MQTT_SERVICE_PASSWORD:?set MQTT_SERVICE_PASSWORD in .env}"
: "${MQTT_INSTALLER_PASSWORD:?set MQTT_INSTALLER_PASSWORD in .env}"
: "${SOFTPLACE_SITE:?set SOFTPLACE_SITE in .env}"
config_dir=${SOFTPLACE_BROKER_CONFIG_DIR:-/mosquitto/config}
devices=${SOFTPLACE_BROKER_DEVICES_DIR:-/mosquitto/devices}
certs=${SOFTPLACE_BROKER_CERTS_DIR:-/mosquitto/certs}
base_acl=${SOFTPLACE_BROKER_BASE_ACL:-/softplace/acl}
passwd=$config_dir/passwd
acl=$config_dir/acl

if [ -f "$devices/passwd" ]; then
    grep -v '^softplace-' "$devices/passwd" > "$passwd" || true
else
    echo "no device accounts yet: $devices/passwd is missing" >&2
    : > "$passwd"
fi
for site in $SOFTPLACE_SITE; do
    mosquitto_passwd -b "$passwd" "softplace-gateway-$site" "$MQTT_SERVICE_PASSWORD"
done
for service in softplace-ingest softplace-detector softplace-health; do
    mosquitto_passwd -b "$passwd" "$service" "$MQTT_SERVICE_PASSWORD"
done
mosquitto_passwd -b "$passwd" softplace-installer "$MQTT_INSTALLER_PASSWORD"

: > "$acl"
for site in $SOFTPLACE_SITE; do
    sed -n "/^user softplace-gateway-@SITE@/,/^$/p" "$base_acl" | sed "s/@SITE@/$site/g" >> "$acl"
done
sed "/^user softplace-gateway-@SITE@/,/^$/d" "$base_acl" >> "$acl"
if [ -f "$devices/acl" ]; then
    printf '\n' >> "$acl"
    grep -v '^user softplace-' "$devices/acl" >> "$acl"
fi

mkdir -p "$config_dir/conf.d"
if [ -f "$certs/broker.crt" ] && [ -f "$certs/broker.key" ]; then
    cat > "$config_dir/conf.d/tls.conf" <<TLS
# written by entrypoint.sh: devices on the building LAN (firmware default: TLS on 8883)
listener ${SOFTPLACE_BROKER_TLS_PORT:-8883}${SOFTPLACE_BROKER_TLS_BIND:+ $SOFTPLACE_BROKER_TLS_BIND}
protocol mqtt
certfile $certs/broker.crt
keyfile $certs/broker.key
tls_version tlsv1.2
TLS
else
    echo "no $certs/broker.crt and broker.key: TLS listener 8883 off (deploy/mosquitto/certs/README.md)" >&2
    rm -f "$config_dir/conf.d/tls.conf"
fi

if id mosquitto > /dev/null 2>&1; then
    chown mosquitto:mosquitto "$passwd" "$acl"
fi
if [ -n "${SOFTPLACE_BROKER_EXEC:-}" ]; then
    exec "$@"  # outside the image (tests): run the command as given
fi
exec /docker-entrypoint.sh "$@"
