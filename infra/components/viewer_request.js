// CloudFront Functions (JavaScript runtime 2.0), viewer request: keep only the query parameters
// the route documents, sorted by name, so that ?limit=10&classId=3 and ?classId=3&limit=10 are
// one cached object and an undocumented parameter cannot split the cache. A parameter given
// twice keeps its values in the order sent (the API reads the last). ROUTES is generated from
// shared/routes.py by infra/components/cdn.py: [path pattern, [parameter, ...]] per route.
var ROUTES = __ROUTES__.map(function (route) {
  return { pattern: new RegExp(route[0]), query: route[1] };
});

function documented(uri) {
  for (var i = 0; i < ROUTES.length; i++) {
    if (ROUTES[i].pattern.test(uri)) {
      return ROUTES[i].query;
    }
  }
  return [];
}

function handler(event) {
  var request = event.request;
  var keep = documented(request.uri);
  var names = Object.keys(request.querystring)
    .filter(function (name) { return keep.indexOf(name) >= 0; })
    .sort();
  var pairs = [];
  names.forEach(function (name) {
    var given = request.querystring[name];
    var values = given.multiValue ? given.multiValue : [given];
    values.forEach(function (v) { pairs.push(name + "=" + v.value); });
  });
  request.querystring = pairs.join("&");
  return request;
}
