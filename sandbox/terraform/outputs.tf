# Magic Castle's outputs (the ones MC Hub reads), plus the sandbox cluster's service URLs.

locals {
  public_instances = {
    for name, address in terraform_data.floating_ip : name => {
      public_ip = address.output.address
      prefix    = local.instances[name].prefix
      tags      = local.instances[name].tags
    }
  }
  nb_users_digits = length(tostring(var.nb_users))
  service_base    = "${trimsuffix(var.sandbox_url, "/")}/sandbox/clusters/${local.hostname}"
}

output "public_instances" {
  value = local.public_instances
}

output "public_ip" {
  value = { for name, instance in local.public_instances : name => instance.public_ip }
}

output "cluster_name" {
  value = lower(var.cluster_name)
}

output "domain" {
  value = lower(var.domain)
}

output "accounts" {
  sensitive = true
  value = {
    guests = {
      usernames = var.nb_users == 0 ? "" : format("user[%0${local.nb_users_digits}d-%d]", 1, var.nb_users)
      password  = var.guest_passwd != "" ? var.guest_passwd : one(terraform_data.guest_password[*].output)
    }
    sudoer = {
      username = "centos"
      password = "N/A (public ssh-key auth)"
    }
  }
}

output "service_urls" {
  value = {
    jupyterhub = "${local.service_base}/jupyterhub"
    freeipa    = "${local.service_base}/freeipa"
  }
}

output "account_portal_url" {
  value = "${local.service_base}/mokey"
}
