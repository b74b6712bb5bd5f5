/// Config file texts for tests.
public enum ConfigFixtures {
    /// The least a config needs (a Kafka address and the `remoteDetails` remote), then, when given, a `[store]`
    /// table holding `store` (`key = value` lines).
    public static func minimal(store: String? = nil) -> String {
        """
        kafka_url = "localhost:9094"
        [remoteDetails]
        host = "h"
        username = "u"
        password = "p"
        """ + (store.map { "\n[store]\n\($0)" } ?? "")
    }
}
