"""Speech and language services: base classes here, one folder per vendor.

``LLMService``, ``TTSService``, ``STTService`` and ``SegmentedSTTService`` hold what every
vendor shares (function calling, sentence aggregation, turn buffering, the audible apology
on failure); ``services/<vendor>/`` holds a sans-I/O module that builds requests and parses
replies, and a thin processor that does the I/O. Vendor SDKs are optional extras.
"""
