/** The one entry of both pages: the gateway serves this document at / and /dashboard; each page is its own chunk. */
if (location.pathname.replace(/\/+$/, "") === "/dashboard") {
  document.title = "ExpertMesh dashboard";
  void import("./dashboard/main.tsx");
} else {
  document.title = "ExpertMesh playground";
  void import("./playground/main.tsx");
}
