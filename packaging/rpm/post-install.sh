# Config and environment file may hold secrets: readable by the service, not by everyone. On a
# first install ($1 = 1) the unit follows the distribution's preset policy.
chown root:multicloud-exporter /etc/multicloud-exporter
chmod 0750 /etc/multicloud-exporter
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    systemctl preset multicloud-exporter.service >/dev/null 2>&1 || :
fi
exit 0
