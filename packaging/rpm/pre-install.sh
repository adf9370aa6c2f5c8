# The service's system user and group, before the files owned by the group are unpacked.
getent group multicloud-exporter >/dev/null || groupadd -r multicloud-exporter
getent passwd multicloud-exporter >/dev/null ||
    useradd -r -g multicloud-exporter -d / -s /sbin/nologin -c multicloud-exporter multicloud-exporter
exit 0
