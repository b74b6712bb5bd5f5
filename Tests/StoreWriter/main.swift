// Test helper: writes records into a transfer store from a separate process.
// Usage: StoreWriter <store-url> <job-id-prefix> <count>   (password from KAFKASYNC_TEST_POSTGRES_PASSWORD)
import Foundation
import Logging
import TransferStore

let arguments = CommandLine.arguments
guard arguments.count == 4, let count = Int(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: StoreWriter <store-url> <job-id-prefix> <count>\n".utf8))
    exit(2)
}
let location = try StoreLocation(url: arguments[1], relativeTo: "/",
                                 password: ProcessInfo.processInfo.environment["KAFKASYNC_TEST_POSTGRES_PASSWORD"])
let prefix = arguments[2]
try await withTransferStore(location, logger: Logger(label: "store-writer")) { store in
    for index in 0..<count {
        let now = Date()
        try await store.save(TransferRecord(jobID: "\(prefix)-\(index)", name: "file-\(index)", remote: "remoteDetails",
                                            remotePath: "/data/file-\(index)", status: .queued, receivedAt: now))
        try await store.save(TransferRecord(jobID: "shared-\(index)", name: "shared-\(index)", remote: "remoteDetails",
                                            remotePath: "/data/shared-\(index)", status: .completed, attempts: 1,
                                            bytesTransferred: Int64(index), receivedAt: now, startedAt: now,
                                            finishedAt: now))
    }
}
print("wrote \(count)")
