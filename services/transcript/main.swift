// calltrace-transcript: the transcript service as a process (its code: Sources/TranscriptDomain).
import CallTraceServiceHost
import TranscriptDomain

await ServiceHost.main(TranscriptService.self)
