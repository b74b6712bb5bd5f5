import KafkaClient

extension KafkaSyncConfig {
    /// The effective configuration as TOML-like text for `kafkasync config check`: defaults filled in,
    /// environment overrides applied, paths absolute, and every secret shown as `<redacted>` with its source.
    public func renderedRedacted() -> String {
        var lines = ["# effective configuration of \(configFile)"]
        lines.append("kafka_url = \(quoted(kafkaURL))")
        lines.append("num_threads = \(numThreads)")
        lines.append("debug_level = \(quoted(debugLevel.rawValue))")
        lines += ["", "[kafka]", "topic = \(quoted(kafka.topic))", "group_id = \(quoted(kafka.groupID))"]
        if !kafka.properties.isEmpty {
            lines += ["", "[kafka.properties]"]
            for (key, value) in kafka.properties.sorted(by: { $0.key < $1.key }) {
                lines.append("\(quoted(key)) = \(KafkaProperty.isSecret(key) ? "<redacted>" : quoted(value))")
            }
        }
        lines += [""] + render(defaultRemote, header: "[remoteDetails]")
        for (name, remote) in remotes.sorted(by: { $0.key < $1.key }) {
            lines += [""] + render(remote, header: "[remotes.\(name)]")
        }
        lines += ["", "[locations]", "incompletes = \(quoted(locations.incompletes))",
                  "completes = \(quoted(locations.completes))", "quarantine = \(quoted(locations.quarantine))"]
        lines += ["", "[store]", "url = \(quoted(store.url)) # \(store.location)"]
        if let source = store.passwordSource { lines.append("password = <redacted> (\(source))") }
        lines += ["", "[consumer]", "concurrency = \(consumer.concurrency)", "max_attempts = \(consumer.maxAttempts)",
                  "backoff_initial = \(quoted("\(consumer.backoffInitial)"))",
                  "backoff_max = \(quoted("\(consumer.backoffMax)"))",
                  "shutdown_grace = \(quoted("\(consumer.shutdownGrace)"))",
                  "on_conflict = \(quoted(consumer.onConflict.rawValue))",
                  "log_file = \(quoted(consumer.logFile ?? ""))", "log_format = \(quoted(consumer.logFormat.rawValue))",
                  "segment_threshold = \(consumer.segmentThreshold)", "max_entries = \(consumer.maxEntries)"]
        lines += ["", "[http]", "listen = \(quoted(http.listen?.description ?? ""))"]
        if let source = http.tokenSource { lines.append("token = <redacted> (\(source))") }
        for (name, upload) in uploads.sorted(by: { $0.key < $1.key }) {
            lines += ["", "[uploads.\(name)]", "endpoint = " + (upload.endpoint.map { quoted($0.absoluteString) } ?? "\"\" # AWS"),
                      "region = \(quoted(upload.region))", "bucket = \(quoted(upload.bucket))",
                      "prefix = \(quoted(upload.prefix))", "credentials = <redacted> (\(upload.credentialsSource))",
                      "path_style = \(upload.pathStyle)", "part_size = \(upload.partSize)",
                      "concurrency = \(upload.concurrency)", "keep_local = \(upload.keepLocal)",
                      "checksum = \(quoted(upload.checksum.rawValue))", "abort_after = \(quoted("\(upload.abortAfter)"))"]
            if let storageClass = upload.storageClass { lines.append("storage_class = \(quoted(storageClass))") }
            if !upload.destinations.isEmpty { lines.append("destinations = [\(upload.destinations.map(quoted).joined(separator: ", "))]") }
        }
        return lines.joined(separator: "\n")
    }

    private func render(_ remote: RemoteConfig, header: String) -> [String] {
        var lines = [header, "host = \(quoted(remote.host))", "port = \(remote.port)",
                     "username = \(quoted(remote.username))"]
        if let source = remote.passwordSource { lines.append("password = <redacted> (\(source))") }
        if let key = remote.privateKey { lines.append("private_key = \(quoted(key))") }
        if let source = remote.privateKeyPassphraseSource { lines.append("private_key_passphrase = <redacted> (\(source))") }
        lines.append("known_hosts = " + (remote.knownHosts.map(quoted) ?? "\"~/.ssh/known_hosts\" # default"))
        if let fingerprint = remote.hostKeyFingerprint { lines.append("host_key_fingerprint = \(quoted(fingerprint))") }
        lines.append("host_key_policy = \(quoted(remote.hostKeyPolicy.rawValue))")
        lines.append("engine = \(quoted(remote.engine.rawValue))")
        lines.append("stall_timeout = \(quoted("\(remote.stallTimeout)"))")
        if let upload = remote.upload { lines.append("upload = \(quoted(upload))") }
        if let agent = remote.identityAgent { lines.append("identity_agent = \(quoted(agent))") }
        if let host = remote.sshConfigHost { lines.append("ssh_config_host = \(quoted(host))") }
        if let file = remote.sshConfigFile { lines.append("ssh_config_file = \(quoted(file))") }
        return lines
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
