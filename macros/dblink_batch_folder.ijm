// DBlink: every ThunderSTORM CSV in a folder -> a calibrated hyperstack TIFF in an output folder.
//
// Arguments (one string): input=[folder of .csv] output=[folder for .tif], then any DBlink options
// (model=filaments stride=4 device=cuda ...). Works with and without menus, GUI or headless:
//
//   dblink fiji --headless --macro macros/dblink_batch_folder.ijm --args "input=[/data/csv] output=[/data/tif] model=filaments"
//   ImageJ-linux64 --headless -batch macros/dblink_batch_folder.ijm "input=[/data/csv] output=[/data/tif]"
//   java -Djava.awt.headless=true -cp ij.jar:DBlink_.jar ij.ImageJ -batch macros/dblink_batch_folder.ijm "input=[...] output=[...]"
//
// Without `dblink fiji` (no in-process Python), each file runs `dblink reconstruct` as a subprocess:
// set the Python with python=[/path/to/env/bin/python] or $DBLINK_PYTHON. There, dblink_batch.ijm
// does the same in one call of `dblink batch` instead (parallel workers, resumable, a summary table).
args = getArgument();
input = parseKey(args, "input");
output = parseKey(args, "output");
if (input == "" || output == "") exit("usage: input=[folder of .csv] output=[folder for .tif] [DBlink options]");
extra = stripKey(stripKey(args, "input"), "output");
if (!endsWith(input, File.separator)) input = input + File.separator;
if (!endsWith(output, File.separator)) output = output + File.separator;
File.makeDirectory(output);
list = getFileList(input);
done = 0; failed = 0;
for (i = 0; i < list.length; i++) {
    if (!endsWith(toLowerCase(list[i]), ".csv")) continue;
    name = substring(list[i], 0, lengthOf(list[i]) - 4);
    r = call("dblink.DBlink_Reconstruct.macro", "table=[" + input + list[i] + "] save=[" + output + name + ".tif] " + extra);
    if (r == "ok") { done++; print("DBlink: " + list[i] + " -> " + output + name + ".tif"); }
    else { failed++; print("DBlink: " + list[i] + " failed: " + r); }
}
print("DBlink batch: " + done + " written, " + failed + " failed");
return "" + done + " written, " + failed + " failed";

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
