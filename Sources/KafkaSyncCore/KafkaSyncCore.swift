/// KafkaSyncCore: the job model and configuration of KafkaSync (transfer engines and the pipeline arrive with later issues).
import Foundation
