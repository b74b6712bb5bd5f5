import AsyncSupport
import Testing

/// `Duration` in seconds and in milliseconds.
@Suite struct DurationSecondsTests {
    @Test func secondsKeepTheFraction() {
        #expect(Duration.seconds(90).timeInterval == 90)
        #expect(Duration.milliseconds(1500).timeInterval == 1.5)
        #expect(Duration.nanoseconds(250).timeInterval == 250e-9)
        #expect(Duration.milliseconds(-250).timeInterval == -0.25)
    }

    @Test func millisecondsDropTheFractionAndSaturate() {
        #expect(Duration.seconds(3600).wholeMilliseconds == 3_600_000)
        #expect(Duration.microseconds(2999).wholeMilliseconds == 2)
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == .max)
        #expect(Duration.seconds(Int64.min).wholeMilliseconds == .min)
    }
}
