extension Array where Element == Range<UInt64> {
    /// Sorted, merged where they overlap or touch, empty ones dropped: each millisecond, byte or
    /// frame once, however many of the ranges name it (what media mutes, and what transcript asks
    /// it to).
    public func merged() -> [Range<UInt64>] {
        var merged: [Range<UInt64>] = []
        for range in sorted(by: { $0.lowerBound < $1.lowerBound }) where !range.isEmpty {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<Swift.max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        return merged
    }
}
