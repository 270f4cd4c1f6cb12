import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// Server-rendered HTML: each page's template (Templates/<name>.mustache) inside the layout,
/// with the navigation of what the signed-in person's role permits. Values are HTML-escaped by
/// the templates (`{{…}}`); only markup the gateway built itself (the QR code's SVG, charts)
/// goes in unescaped.
struct Renderer: Sendable {
    private let library: MustacheLibrary

    init(library: MustacheLibrary) throws {
        self.library = library
        for name in ["layout", "message"] where library.getTemplate(named: name) == nil {
            throw WebSetupError("the template \(name).mustache is missing")
        }
    }

    /// A whole page: `template` rendered with `data`, inside the layout.
    func page(_ template: String, title: String, data: [String: Any] = [:], chrome: Chrome?,
              status: HTTPResponse.Status = .ok) -> Response {
        let body = library.render(data, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "body": body]
        if let chrome { layout["chrome"] = chrome.values }
        let html = library.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A page that only says something (refusals, "not available", confirmations).
    func message(title: String, text: String, link: (href: String, label: String)? = nil, chrome: Chrome?,
                 status: HTTPResponse.Status) -> Response {
        var data: [String: Any] = ["heading": title, "text": text]
        if let link { data["link"] = ["href": link.href, "label": link.label] }
        return page("message", title: title, data: data, chrome: chrome, status: status)
    }
}

/// The header of a signed-in page: who is signed in, the sections their role opens, and the
/// form token of the sign-out button.
struct Chrome: Sendable {
    let displayName: String
    let role: String
    let csrf: String
    let sections: [Section]
    /// Which section the page belongs to (marked as current in the navigation).
    var current: String?

    struct Section: Sendable {
        let name: String
        let href: String
    }

    var values: [String: Any] {
        [
            "displayName": displayName, "role": role, "csrf": csrf,
            "sections": sections.map { section -> [String: Any] in
                ["name": section.name, "href": section.href, "current": section.name == current]
            },
        ]
    }
}

struct WebSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
