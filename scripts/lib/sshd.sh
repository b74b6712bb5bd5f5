# A throwaway OpenSSH sshd on a free loopback port serving a folder over SFTP (internal-sftp) to the
# current user with a generated ed25519 key; the approach of the test fixture (TestSupport/SSHServerFixture).
# Source this file, then:  sshd_start WORKDIR   → sets SSHD_PORT SSHD_USER SSHD_KEY SSHD_KNOWN_HOSTS SSHD_PID
#                          sshd_stop             → kills it and the sessions it forked

sshd_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

sshd_start() {
    local dir=$1
    mkdir -p "$dir"
    chmod 755 "$dir"
    SSHD_USER=$(id -un)
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" -C kafkasync-host
    ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key" -C kafkasync-client
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    chmod 644 "$dir/authorized_keys"
    SSHD_KEY=$dir/client_key
    SSHD_PORT=$(sshd_free_port)
    SSHD_KNOWN_HOSTS=$dir/known_hosts
    echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$dir/host_key.pub")" > "$SSHD_KNOWN_HOSTS"
    [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
    cat > "$dir/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers $SSHD_USER
Subsystem sftp internal-sftp
MaxSessions 64
MaxStartups 64
CONF
    /usr/sbin/sshd -D -e -f "$dir/sshd_config" < /dev/null > /dev/null 2> "$dir/sshd.log" &
    SSHD_PID=$!
    for _ in $(seq 1 150); do
        grep -q "Server listening" "$dir/sshd.log" 2>/dev/null && return 0
        kill -0 "$SSHD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "sshd did not start:" >&2
    cat "$dir/sshd.log" >&2
    return 1
}

sshd_stop() {
    [ -n "${SSHD_PID:-}" ] || return 0
    pkill -KILL -P "$SSHD_PID" 2>/dev/null || true
    kill "$SSHD_PID" 2>/dev/null || true
    wait "$SSHD_PID" 2>/dev/null || true
    SSHD_PID=
}
