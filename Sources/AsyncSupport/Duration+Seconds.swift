extension Duration {
    /// The duration in seconds, fractional: for `Date` arithmetic, rates and settings counted in seconds.
    public var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in whole milliseconds (the fraction dropped; `Int64.min`/`Int64.max` beyond their range): for
    /// settings and queries counted in milliseconds.
    public var wholeMilliseconds: Int64 { whole(unitsPerSecond: 1000) }

    /// The duration in whole nanoseconds (saturating as ``wholeMilliseconds``): for timers counted in nanoseconds.
    public var wholeNanoseconds: Int64 { whole(unitsPerSecond: 1_000_000_000) }

    private func whole(unitsPerSecond: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (units, overflow) = seconds.multipliedReportingOverflow(by: unitsPerSecond)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = units.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / unitsPerSecond))
        guard !sumOverflow else { return seconds < 0 ? .min : .max }
        return sum
    }
}
