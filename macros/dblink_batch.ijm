// DBlink: many localization tables -> one calibrated hyperstack each, in ONE call of `dblink batch`
// (Dask workers, resumable: finished outputs are skipped; a failing table does not stop the others;
// a summary table dblink_batch.csv in the output folder).
//
// Arguments (one string): input=[folder, table or glob] output=[folder for .tif], then optionally
// python=[/path/to/env/bin/python] workers=N (0 = one after another, no Dask) scheduler=[tcp://host:8786]
// overwrite, and any DBlink options as in the plugin (model=filaments stride=auto device=cuda ...):
//
//   ImageJ-linux64 --headless -batch macros/dblink_batch.ijm "input=[/data/csv] output=[/data/tif] workers=2"
//   java -Djava.awt.headless=true -cp ij.jar ij.ImageJ -batch macros/dblink_batch.ijm "input=[...] output=[...]"
//
// It runs the dblink command line through exec() (no menus or plugin needed): the Python is
// python=[...], else the DBlink plugin's setting (Plugins>DBlink>DBlink Settings...), else
// $DBLINK_PYTHON, else python3. ImageJ waits until the whole batch is done; the Log gets one line
// per table. For the in-process runtime (`dblink fiji`), dblink_batch_folder.ijm loops over a folder instead.
args = getArgument();
input = parseKey(args, "input");
output = parseKey(args, "output");
if (input == "" || output == "") exit("usage: input=[folder, table or glob] output=[folder for .tif] [python=[...]] [workers=N] [DBlink options]");
python = parseKey(args, "python");
extra = stripKey(stripKey(stripKey(args, "input"), "output"), "python");
if (python == "") python = call("ij.Prefs.get", "dblink.python", "");
if (python == "") python = call("java.lang.System.getenv", "DBLINK_PYTHON");
if (python == "" || python == "null") python = "python3";
print("DBlink batch: " + python + " -m dblink.cli batch " + input + " -o " + output + " " + extra);
out = exec(python, "-m", "dblink.cli", "batch", "-o", output, "--progress", "json", "--macro-options", extra, "--", input);
lines = split(out, "\n");
result = "";
for (i = 0; i < lines.length; i++) {
    line = lines[i];
    event = jsonValue(line, "event");
    if (event == "file") {
        st = jsonValue(line, "status");
        if (st == "failed") print("DBlink: " + jsonValue(line, "input") + " failed: " + jsonValue(line, "message"));
        else if (st == "skipped") print("DBlink: " + jsonValue(line, "input") + " skipped (" + jsonValue(line, "output") + " exists)");
        else print("DBlink: " + jsonValue(line, "input") + " -> " + jsonValue(line, "output") + " (" + jsonValue(line, "shape") + ", " + jsonValue(line, "seconds") + " s, " + jsonValue(line, "device") + ")");
    } else if (event == "warning") {
        print("DBlink: warning: " + jsonValue(line, "message"));
    } else if (event == "done") {
        result = "" + jsonValue(line, "written") + " written, " + jsonValue(line, "skipped") + " skipped (done before), " + jsonValue(line, "failed") + " failed";
        print("DBlink batch: " + result + " in " + jsonValue(line, "seconds") + " s; summary " + jsonValue(line, "summary"));
    } else if (event == "error") {
        print("DBlink batch: error: " + jsonValue(line, "message"));
        if (result == "") result = "error: " + jsonValue(line, "message");
    }
}
if (result == "") {
    result = "error: no answer from " + python + " (is dblink installed there? run the command above in a shell)";
    print("DBlink batch: " + result);
}
return result;

// the value of "key" in one JSON line of `dblink batch --progress json` (a string or a number)
function jsonValue(line, key) {
    i = indexOf(line, "\"" + key + "\": ");
    if (i < 0) return "";
    v = substring(line, i + lengthOf(key) + 4);
    if (!startsWith(v, "\"")) {  // a number
        j = indexOf(v, ",");
        if (j < 0) j = indexOf(v, "}");
        return substring(v, 0, j);
    }
    s = ""; k = 1;
    while (k < lengthOf(v)) {
        c = substring(v, k, k + 1);
        if (c == "\\") {
            n = substring(v, k + 1, k + 2);
            if (n == "u") { s = s + fromCharCode(parseInt(substring(v, k + 2, k + 6), 16)); k = k + 6; continue; }
            if (n == "n") n = " ";
            s = s + n; k = k + 2; continue;
        }
        if (c == "\"") return s;
        s = s + c; k++;
    }
    return s;
}

function parseKey(s, key) {
    i = indexOf(" " + s, " " + key + "=");
    if (i < 0) return "";
    v = substring(s, i + lengthOf(key) + 1);
    // like ImageJ's Macro.getValue: a bracketed value ends at "] " or at the final "]"
    if (startsWith(v, "[")) return substring(v, 1, indexOf(v + " ", "] "));
    j = indexOf(v, " ");
    if (j < 0) return v;
    return substring(v, 0, j);
}

function stripKey(s, key) {
    v = parseKey(s, key);
    if (v == "") return s;
    whole = key + "=" + v;
    if (indexOf(s, key + "=[") >= 0) whole = key + "=[" + v + "]";
    i = indexOf(s, whole);
    return substring(s, 0, i) + substring(s, i + lengthOf(whole));
}
