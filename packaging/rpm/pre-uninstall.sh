# On removal ($1 = 0), not on upgrade: stop and disable the service.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now multicloud-exporter.service >/dev/null 2>&1 || :
fi
exit 0
