#!/usr/bin/env python3
"""perf/profile_stages.py's attribution: python3 -m unittest discover -s perf -p 'profile_stages_test.py'"""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from profile_stages import classify, samples  # noqa: E402

# Two samples as `perf script -F comm,tid,ip,sym,dso` prints them (leaf first): a kernel send made
# by Kestrel's transport under the forwarder, and a user-space sample in the inspection stage.
SCRIPT = """.NET Sockets 24189 
\tffffffff81eb0cc5 _raw_spin_unlock_irqrestore ([kernel.kallsyms])
\tffffffff81e787fd __sys_sendto ([kernel.kallsyms])
\tffffffff81e78840 __x64_sys_sendto ([kernel.kallsyms])
\t          10aba4 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t          7e20b2 System_Net_Sockets_System_Net_Sockets_SocketAsyncContext__SendTo (/a/aotproxy)
\t          7e20b3 Microsoft_AspNetCore_Server_Kestrel_Transport_Sockets_Internal_SocketSender__SendAsync (/a/aotproxy)
\t          7dc155 aotproxy_AotProxy_Forwarding_Forwarder__ForwardAsync_d__6__MoveNext (/a/aotproxy)

.NET Sockets 24189 
\t          7dc100 System_Text_Json_System_Text_Json_Utf8JsonReader__ReadSingleSegment (/a/aotproxy)
\t          7dc101 aotproxy_AotProxy_Inspection_RequestInspector__InspectCore+0x1f (/a/aotproxy)
\t          879d1c aotproxy_AotProxy_Http_DataPlaneHandler__ProxyAsync_d__16__MoveNext (/a/aotproxy)
"""


class ProfileStagesTest(unittest.TestCase):
    def setUp(self):
        self.parsed = list(samples(io.StringIO(SCRIPT)))

    def test_samples_keep_thread_names_and_frames_leaf_first(self):
        self.assertEqual([comm for comm, _ in self.parsed], [".NET Sockets", ".NET Sockets"])
        self.assertEqual(self.parsed[0][1][0], ("_raw_spin_unlock_irqrestore", "[kernel.kallsyms]"))
        self.assertEqual(self.parsed[1][1][1][0], "aotproxy_AotProxy_Inspection_RequestInspector__InspectCore")

    def test_by_stage_a_sample_belongs_to_the_innermost_stage_of_ours(self):
        self.assertEqual(classify(self.parsed[0][1]), "Forwarding")
        self.assertEqual(classify(self.parsed[1][1]), "Inspection")

    def test_innermost_names_kernel_samples_by_system_call_and_caller(self):
        self.assertEqual(classify(self.parsed[0][1], innermost=True), "kernel: sendto <- Sockets engine")
        self.assertEqual(classify(self.parsed[1][1], innermost=True), "Inspection")


if __name__ == "__main__":
    unittest.main()
