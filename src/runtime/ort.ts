/**
 * onnxruntime-node, with ONNX Runtime's telemetry turned off before its environment starts. On Linux that start-up
 * matches the process's command line against regular expressions in GCC's backtracking std::regex, which recurses
 * once per character: a command line of some 80 KB (`cxr predict images/*.png` over a folder of a few thousand
 * films) overflows the stack and the process dies with SIGSEGV. With telemetry off that code never runs (and we
 * want no telemetry anyway). ONNX Runtime reads the variable when the first session is created, after this module
 * has run, so every import of onnxruntime-node in the library goes through here.
 */
import ort from 'onnxruntime-node';

process.env.ORT_DISABLE_TELEMETRY ??= '1';

export default ort;
