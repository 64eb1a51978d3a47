// DBlink after ThunderSTORM: localize the open raw SMLM stack with ThunderSTORM (settings as
// recorded below: edit them to your camera and data), then reconstruct a super-resolved video
// with DBlink from ThunderSTORM's results table, and show it.
//
// Open your raw movie in Fiji, then: Plugins > Macros > Run... > dblink_after_thunderstorm.ijm
// or from a shell (Fiji with a display, ThunderSTORM installed):
//   ImageJ-linux64 -macro macros/dblink_after_thunderstorm.ijm "save=[/data/dblink.tif]"
// Optional argument: DBlink options, e.g. "model=filaments stride=4 save=[/data/out.tif]".
args = getArgument();
if (nImages == 0) exit("DBlink: open the raw SMLM movie first");
// ThunderSTORM (recorded with Plugins > Macros > Record...); camera: 80 nm pixels, EM gain off
run("Camera setup", "offset=100.0 quantumefficiency=1.0 isemgain=false photons2adu=3.6 pixelsize=80.0");
run("Run analysis", "filter=[Wavelet filter (B-Spline)] scale=2.0 order=3 detector=[Local maximum] connectivity=8-neighbourhood threshold=std(Wave.F1) estimator=[PSF: Integrated Gaussian] sigma=1.6 fitradius=3 method=[Weighted Least squares] full_image_fitting=false mfaenabled=false renderer=[No Renderer]");
// DBlink exports the open results table through ThunderSTORM's "Export results" and reconstructs it
run("DBlink Reconstruct...", "table=[ThunderSTORM results] model=filaments show " + args);
err = call("dblink.DBlink_Reconstruct.lastError");
if (err != "") exit("DBlink: " + err);
