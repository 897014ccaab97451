//! The three EC2 calls the tests need (a VPC, its subnets and a security group, which moto's
//! ALB and ECS calls require), sent as plain EC2 Query API requests to the moto endpoint.
//! The `aws-sdk-ec2` crate would do the same at the cost of ~15 minutes of compiling.

/// EC2 Query API version the requests speak.
const VERSION: &str = "2016-11-15";

/// moto does not verify signatures, but reads the credential scope of this header to route
/// the request to EC2 in us-east-1.
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
    Credential=test/20260101/us-east-1/ec2/aws4_request, \
    SignedHeaders=host, Signature=unsigned";

/// A client for the EC2 Query API of one moto server.
pub struct Ec2 {
    http: reqwest::Client,
    endpoint: String,
}

impl Ec2 {
    pub fn new(endpoint: &str) -> Ec2 {
        Ec2 {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_string(),
        }
    }

    /// Creates a VPC and returns its id.
    pub async fn create_vpc(&self, cidr: &str) -> String {
        self.call("CreateVpc", &[("CidrBlock", cidr)], "vpcId")
            .await
    }

    /// Creates a subnet of `vpc` and returns its id.
    pub async fn create_subnet(&self, vpc: &str, cidr: &str, zone: &str) -> String {
        let params = [
            ("VpcId", vpc),
            ("CidrBlock", cidr),
            ("AvailabilityZone", zone),
        ];
        self.call("CreateSubnet", &params, "subnetId").await
    }

    /// Creates a security group in `vpc` and returns its id.
    pub async fn create_security_group(&self, vpc: &str, name: &str, description: &str) -> String {
        let params = [
            ("GroupName", name),
            ("GroupDescription", description),
            ("VpcId", vpc),
        ];
        self.call("CreateSecurityGroup", &params, "groupId").await
    }

    /// POSTs `action` with `params` and returns the text of the answer's first `id` element;
    /// panics with the answer when the call fails or the element is missing.
    async fn call(&self, action: &str, params: &[(&str, &str)], id: &str) -> String {
        let body = form_body(
            [("Action", action), ("Version", VERSION)]
                .iter()
                .chain(params),
        );
        let response = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, AUTHORIZATION)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("EC2 {action} to {}: {e}", self.endpoint));
        let status = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("EC2 {action}: reading the answer: {e}"));
        assert!(
            status.is_success(),
            "EC2 {action} answered {status}:\n{text}"
        );
        xml_element(&text, id)
            .unwrap_or_else(|| panic!("EC2 {action}: no <{id}> in the answer:\n{text}"))
            .to_string()
    }
}

/// `application/x-www-form-urlencoded` body of `pairs` (the encoder of `reqwest::Url`).
fn form_body<'a>(pairs: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("static URL");
    url.query_pairs_mut()
        .extend_pairs(pairs.into_iter().map(|(k, v)| (*k, *v)));
    url.query().unwrap_or_default().to_string()
}

/// Text of the first `<name>…</name>` element of `xml` (EC2 answers carry plain ids there).
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].trim())
}
