import Foundation
import KafkaClient
import KafkaSyncCore
import TestSupport
import Testing

/// Issue 16: remotes only the OpenSSH client can serve, under the default `engine = "auto"`: keys held by a real
/// `ssh-agent`, and a `Host` block of an ssh client configuration that reaches the server through a `ProxyJump`.
@Suite(.serialized, .timeLimit(.minutes(5))) struct OpenSSHRoutesTests {
    @Test func aKeyHeldOnlyByTheSSHAgentLogsIn() async throws {
        let agentFolder = try TemporaryDirectory(prefix: "kafkasync-agent")
        defer { agentFolder.remove() }
        let socket = agentFolder.file("agent.sock")
        let agent = try BackgroundProcess("ssh-agent", ["-D", "-a", socket])
        defer { Task { _ = await agent.stop(signal: SIGKILL) } }
        try await TestSupport.waitUntil("the agent listens") { FileManager.default.fileExists(atPath: socket) }
        try await withConsumerFixture(remoteConfig: { server in
            """
            host = "127.0.0.1:\(server.port)"
            username = "\(server.username)"
            known_hosts = "\(server.knownHosts)"
            identity_agent = "\(socket)"
            """
        }) { fixture in
            let added = try await runProcess("ssh-add", [fixture.server.clientKey], environment: ["SSH_AUTH_SOCK": socket])
            try #require(added.status == 0, "\(added.stderr)")
            try fixture.server.serve("signed-by-the-agent.txt", Data("the agent signed".utf8))
            try await fixture.withConsumer { consumer in
                try await fixture.publish([fixture.job("signed-by-the-agent.txt")])
                let done = try await fixture.read(fixture.topics.done, count: 1)
                #expect(try DoneEvent.decode(done[0].value).status == "completed")
                #expect(FileManager.default.contents(atPath: fixture.completes + "/signed-by-the-agent.txt")
                        == Data("the agent signed".utf8))
                #expect(consumer.stderr.contains("identity_agent needs the OpenSSH client"))
            }
        }
    }

    @Test func anSSHConfigHostReachesTheServerThroughItsProxyJump() async throws {
        try await withConsumerFixture(remoteConfig: { server in
            """
            ssh_config_host = "appliance"
            ssh_config_file = "\(server.directory.file("ssh_config"))"
            known_hosts = "\(server.knownHosts)"
            """
        }) { fixture in
            let server = fixture.server
            // The appliance is reached through the jump host (the same sshd, which forwards to itself).
            try server.directory.write("ssh_config", """
                Host jumpbox
                  HostName 127.0.0.1
                  Port \(server.port)
                  User \(server.username)
                  IdentityFile \(server.clientKey)
                  UserKnownHostsFile \(server.knownHosts)
                  GlobalKnownHostsFile /dev/null
                  StrictHostKeyChecking yes
                  BatchMode yes
                Host appliance
                  HostName 127.0.0.1
                  Port \(server.port)
                  User \(server.username)
                  IdentityFile \(server.clientKey)
                  ProxyJump jumpbox

                """)
            try server.serve("behind-the-bastion.txt", Data("through the jump host".utf8))
            let before = server.log.components(separatedBy: "Accepted publickey").count
            try await fixture.withConsumer { consumer in
                try await fixture.publish([fixture.job("behind-the-bastion.txt")])
                let done = try await fixture.read(fixture.topics.done, count: 1)
                #expect(try DoneEvent.decode(done[0].value).status == "completed", "\(consumer.stderr.suffix(2000))")
                #expect(FileManager.default.contents(atPath: fixture.completes + "/behind-the-bastion.txt")
                        == Data("through the jump host".utf8))
                #expect(consumer.stderr.contains("ssh_config_host needs the OpenSSH client"))
            }
            let logins = server.log.components(separatedBy: "Accepted publickey").count - before
            #expect(logins >= 2, "one login on the jump host, one through it: \(logins)")
        }
    }
}
