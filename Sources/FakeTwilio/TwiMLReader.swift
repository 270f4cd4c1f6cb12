public import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
public import Twilio

/// Reads a gateway's TwiML answer back into `TwiML`, as Twilio reads it, for the call driver
/// (and for tests that look at an answer). Only the verbs and attributes `TwiML` models are
/// understood; any other verb is an error, so a gateway cannot answer with something the fake
/// would silently skip.
public enum TwiMLReader {
    public static func read(_ data: Data) throws(TwiMLReadError) -> TwiML {
        let tree = TreeBuilder()
        let parser = XMLParser(data: data)
        parser.delegate = tree
        parser.shouldResolveExternalEntities = false
        guard parser.parse(), let root = tree.root else { throw TwiMLReadError("the answer is not well-formed XML") }
        guard root.name == "Response" else { throw TwiMLReadError("the document's root is <\(root.name)>, not <Response>") }
        return TwiML(try root.children.map { node throws(TwiMLReadError) in try verb(node) })
    }

    private static func verb(_ node: Node) throws(TwiMLReadError) -> TwiML.Verb {
        let a = node.attributes
        switch node.name {
        case "Say":
            return .say(TwiML.Say(node.text.trimmingCharacters(in: .whitespacesAndNewlines), voice: a["voice"], language: a["language"], loop: a["loop"].flatMap { Int($0) }))
        case "Play":
            return .play(TwiML.Play(node.text.trimmingCharacters(in: .whitespacesAndNewlines), loop: a["loop"].flatMap { Int($0) }))
        case "Pause":
            return .pause(seconds: a["length"].flatMap { Int($0) } ?? 1)
        case "Hangup":
            return .hangup
        case "Reject":
            guard let reason = TwiML.RejectReason(rawValue: a["reason"] ?? "rejected") else { throw TwiMLReadError("<Reject> has an unknown reason") }
            return .reject(reason)
        case "Redirect":
            return .redirect(url: node.text.trimmingCharacters(in: .whitespacesAndNewlines), method: try method(a["method"]) ?? .post)
        case "Record":
            return .record(TwiML.Record(
                action: a["action"], method: try method(a["method"]), timeoutSeconds: a["timeout"].flatMap { Int($0) },
                maxLengthSeconds: a["maxLength"].flatMap { Int($0) }, playBeep: a["playBeep"].map { $0 == "true" },
                finishOnKey: a["finishOnKey"], recordingStatusCallback: a["recordingStatusCallback"],
                recordingStatusCallbackMethod: try method(a["recordingStatusCallbackMethod"]),
                recordingStatusCallbackEvent: events(a["recordingStatusCallbackEvent"])))
        case "Dial":
            var numbers: [TwiML.Number] = []
            for child in node.children {
                guard child.name == "Number" else { throw TwiMLReadError("<Dial> holds <\(child.name)>, which the fake does not dial") }
                numbers.append(TwiML.Number(child.text.trimmingCharacters(in: .whitespacesAndNewlines), url: child.attributes["url"],
                                            method: try method(child.attributes["method"])))
            }
            // A bare number as the text of <Dial> is Twilio's shorthand for one <Number>.
            let bare = node.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if numbers.isEmpty, !bare.isEmpty { numbers = [TwiML.Number(bare)] }
            return .dial(TwiML.Dial(
                numbers, action: a["action"], method: try method(a["method"]), callerId: a["callerId"],
                timeoutSeconds: a["timeout"].flatMap { Int($0) }, record: try a["record"].map { value throws(TwiMLReadError) in
                    guard let record = TwiML.DialRecording(rawValue: value) else { throw TwiMLReadError("<Dial> has an unknown record value") }
                    return record
                },
                recordingStatusCallback: a["recordingStatusCallback"],
                recordingStatusCallbackMethod: try method(a["recordingStatusCallbackMethod"]),
                recordingStatusCallbackEvent: events(a["recordingStatusCallbackEvent"]),
                answerOnBridge: a["answerOnBridge"].map { $0 == "true" }))
        default:
            throw TwiMLReadError("<\(node.name)> is not a verb the fake plays")
        }
    }

    private static func method(_ text: String?) throws(TwiMLReadError) -> TwiML.HTTPMethod? {
        guard let text else { return nil }
        guard let method = TwiML.HTTPMethod(rawValue: text.uppercased()) else { throw TwiMLReadError("a method must be GET or POST") }
        return method
    }

    private static func events(_ text: String?) -> [TwiML.RecordingEvent] {
        (text ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).compactMap { TwiML.RecordingEvent(rawValue: String($0)) }
    }
}

public struct TwiMLReadError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

private final class Node {
    let name: String
    let attributes: [String: String]
    var text = ""
    var children: [Node] = []

    init(name: String, attributes: [String: String]) {
        self.name = name
        self.attributes = attributes
    }
}

/// Builds the element tree as the parser reports it (on the calling thread, synchronously).
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var root: Node?
    private var open: [Node] = []

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        let node = Node(name: name, attributes: attributes)
        if let parent = open.last { parent.children.append(node) } else { root = node }
        open.append(node)
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        _ = open.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        open.last?.text += string
    }
}
