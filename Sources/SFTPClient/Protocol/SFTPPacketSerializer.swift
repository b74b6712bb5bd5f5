import NIOCore

/// Encodes client requests as SFTP packets (uint32 length, type, payload).
enum SFTPPacketSerializer {
    static func write(_ request: SFTPRequest, into buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        switch request {
        case .initialize(let version):
            buffer.writeInteger(SFTPPacketType.initialize.rawValue)
            buffer.writeInteger(version)
        case .open(let id, let path, let flags, let attributes):
            buffer.writeHeader(.open, id)
            buffer.writeSFTPString(path)
            buffer.writeInteger(flags.rawValue)
            buffer.writeSFTPAttributes(attributes)
        case .close(let id, let handle):
            buffer.writeHeader(.close, id)
            buffer.writeSFTPBytes(handle)
        case .read(let id, let handle, let offset, let length):
            buffer.writeHeader(.read, id)
            buffer.writeSFTPBytes(handle)
            buffer.writeInteger(offset)
            buffer.writeInteger(length)
        case .lstat(let id, let path):
            buffer.writeHeader(.lstat, id)
            buffer.writeSFTPString(path)
        case .fstat(let id, let handle):
            buffer.writeHeader(.fstat, id)
            buffer.writeSFTPBytes(handle)
        case .stat(let id, let path):
            buffer.writeHeader(.stat, id)
            buffer.writeSFTPString(path)
        case .opendir(let id, let path):
            buffer.writeHeader(.opendir, id)
            buffer.writeSFTPString(path)
        case .readdir(let id, let handle):
            buffer.writeHeader(.readdir, id)
            buffer.writeSFTPBytes(handle)
        case .realpath(let id, let path):
            buffer.writeHeader(.realpath, id)
            buffer.writeSFTPString(path)
        case .limits(let id):
            buffer.writeHeader(.extended, id)
            buffer.writeSFTPString("limits@openssh.com")
        }
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: lengthIndex)
    }
}

extension ByteBuffer {
    fileprivate mutating func writeHeader(_ type: SFTPPacketType, _ id: UInt32) {
        writeInteger(type.rawValue)
        writeInteger(id)
    }

    mutating func writeSFTPString(_ text: String) {
        writeInteger(UInt32(text.utf8.count))
        writeString(text)
    }

    mutating func writeSFTPBytes(_ bytes: ByteBuffer) {
        writeInteger(UInt32(bytes.readableBytes))
        writeImmutableBuffer(bytes)
    }

    mutating func writeSFTPAttributes(_ attributes: SFTPAttributes) {
        var flags: SFTPAttributes.Flags = []
        if attributes.size != nil { flags.insert(.size) }
        if attributes.uid != nil && attributes.gid != nil { flags.insert(.uidgid) }
        if attributes.permissions != nil { flags.insert(.permissions) }
        if attributes.accessTime != nil && attributes.modificationTime != nil { flags.insert(.accessModificationTime) }
        if !attributes.extended.isEmpty { flags.insert(.extended) }
        writeInteger(flags.rawValue)
        if let size = attributes.size { writeInteger(size) }
        if let uid = attributes.uid, let gid = attributes.gid {
            writeInteger(uid)
            writeInteger(gid)
        }
        if let permissions = attributes.permissions { writeInteger(permissions) }
        if let atime = attributes.accessTime, let mtime = attributes.modificationTime {
            writeInteger(atime)
            writeInteger(mtime)
        }
        if !attributes.extended.isEmpty {
            writeInteger(UInt32(attributes.extended.count))
            for (type, data) in attributes.extended {
                writeSFTPString(type)
                writeSFTPString(data)
            }
        }
    }
}
