# After an upgrade ($1 >= 1) the running service restarts on the new binary. The user stays, as
# files it owned may remain.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -ge 1 ]; then
    systemctl try-restart multicloud-exporter.service >/dev/null 2>&1 || :
fi
exit 0
