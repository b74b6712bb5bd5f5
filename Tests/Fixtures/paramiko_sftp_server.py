#!/usr/bin/env python3
"""An SFTP server on paramiko (PyPI paramiko and sftpserver): a third SSH and SFTP implementation, besides OpenSSH
and asyncssh, for KafkaSync's compatibility tests (Sources/TestSupport/ScriptedSFTPServer.swift, `.paramiko`).

Serves --root as "/", logs in any user holding a key of --authorized-keys (public key only), with the host key
--host-key (ed25519 or ECDSA, OpenSSH format). Prints
"LISTENING <port>" once it accepts connections (a free port), and one line per connection on stderr.
"""
import argparse
import socket
import sys
import threading

import paramiko
from sftpserver.stub_sftp import StubServer, StubSFTPServer


class KeyOnly(StubServer):
    def __init__(self, authorized):
        self.authorized = authorized

    def check_auth_password(self, username, password):
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL if key.get_base64() in self.authorized else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "publickey"


def load_host_key(path):
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey):
        try:
            return kind.from_private_key_file(path)
        except (paramiko.SSHException, ValueError):
            continue
    raise SystemExit(f"paramiko_sftp_server: cannot read the host key {path}")


def serve(connection, host_key, authorized):
    transport = paramiko.Transport(connection)
    transport.add_server_key(host_key)
    transport.set_subsystem_handler("sftp", paramiko.SFTPServer, StubSFTPServer)
    try:
        transport.start_server(server=KeyOnly(authorized))
        channel = transport.accept(30)
        if channel is None:
            return
        while transport.is_active():
            transport.join(1)
    except (paramiko.SSHException, EOFError, OSError) as error:
        print(f"connection ended: {error}", file=sys.stderr, flush=True)
    finally:
        transport.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--authorized-keys", required=True)
    arguments = parser.parse_args()
    StubSFTPServer.ROOT = arguments.root.rstrip("/")
    host_key = load_host_key(arguments.host_key)
    with open(arguments.authorized_keys, encoding="utf-8") as file:
        authorized = {line.split()[1] for line in file if len(line.split()) >= 2}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(f"LISTENING {listener.getsockname()[1]}", flush=True)
    while True:
        connection, peer = listener.accept()
        print(f"connection from {peer}", file=sys.stderr, flush=True)
        threading.Thread(target=serve, args=(connection, host_key, authorized), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
