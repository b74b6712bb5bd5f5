import NIOCore
import NIOSSH

/// Requests on their way out, each with the promise its response completes. They leave in one SSH message: the
/// server reads them together, and a file's STAT and OPEN (or READ and CLOSE) cost one trip instead of two.
struct SFTPOutbound {
    let requests: [(request: SFTPRequest, response: EventLoopPromise<SFTPResponse>)]
}

/// Sits on the SSH session channel: requests the `sftp` subsystem, frames requests, parses responses and
/// matches them to requests by id (many in flight). Everything happens on the channel's event loop.
final class SFTPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SFTPOutbound
    typealias OutboundOut = SSHChannelData

    private var parser = SFTPPacketParser()
    private var pending: [UInt32: EventLoopPromise<SFTPResponse>] = [:]
    /// INIT has no id: its VERSION answer completes this.
    private var versionPromise: EventLoopPromise<SFTPResponse>?
    private var subsystemPromise: EventLoopPromise<Void>?
    private var failure: SFTPError?

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { requestSubsystem(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        requestSubsystem(context: context)
        context.fireChannelActive()
    }

    /// Completes when the server has started the sftp subsystem.
    func subsystemStarted(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        if let failure { return eventLoop.makeFailedFuture(failure) }
        let promise = subsystemPromise ?? eventLoop.makePromise()
        subsystemPromise = promise
        return promise.futureResult
    }

    private func requestSubsystem(context: ChannelHandlerContext) {
        if subsystemPromise == nil { subsystemPromise = context.eventLoop.makePromise() }
        context.triggerUserOutboundEvent(SSHChannelRequestEvent.SubsystemRequest(subsystem: "sftp", wantReply: true),
                                         promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelSuccessEvent {
            subsystemPromise?.succeed()
        } else if event is ChannelFailureEvent {
            fail(context: context, SFTPError(.failure, "the server refused to start the sftp subsystem"))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        if let failure {
            outbound.requests.forEach { $0.response.fail(failure) }
            promise?.fail(failure)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64 * outbound.requests.count)
        for (request, response) in outbound.requests {
            if let id = request.id {
                pending[id] = response
            } else {
                versionPromise = response
            }
            SFTPPacketSerializer.write(request, into: &buffer)
        }
        context.write(wrapOutboundOut(SSHChannelData(type: .channel, data: .byteBuffer(buffer))), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .channel = message.type, case .byteBuffer(let bytes) = message.data else { return }
        parser.append(bytes)
        do {
            while let response = try parser.nextResponse() {
                if let id = response.id {
                    guard let promise = pending.removeValue(forKey: id) else {
                        throw SFTPProtocolError(reason: "a response to unknown request id \(id)")
                    }
                    promise.succeed(response)
                } else {
                    versionPromise?.succeed(response)
                    versionPromise = nil
                }
            }
        } catch {
            fail(context: context, SFTPError(.protocolError, "\(error)"))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, SFTPError(.connectionLost, "the SFTP channel failed: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, SFTPError(.connectionLost, "the SFTP connection was lost"))
        context.fireChannelInactive()
    }

    /// Fails everything in flight with the first error seen.
    private func fail(context: ChannelHandlerContext, _ error: SFTPError) {
        let error = failure ?? error
        failure = error
        subsystemPromise?.fail(error)
        versionPromise?.fail(error)
        versionPromise = nil
        let waiting = pending
        pending = [:]
        waiting.values.forEach { $0.fail(error) }
    }
}
